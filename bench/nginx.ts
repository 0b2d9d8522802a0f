// The baseline of the download bench: Debian's nginx serving a directory over loopback, started on a random
// port with a throwaway config (one process, sendfile, no logs) and stopped again.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const NGINX = '/usr/sbin/nginx'

/** nginx from the Debian package, installed on first use (the bench may install; the tests never need it). */
export function ensureNginx (): string {
  if (existsSync(NGINX)) return NGINX
  console.log('nginx missing: apt-get install -y nginx (Debian package) ...')
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'nginx'], { stdio: ['ignore', 'ignore', 'inherit'] })
  if (r.status !== 0 || !existsSync(NGINX)) throw new Error('nginx could not be installed (apt-get install nginx)')
  return NGINX
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export interface Nginx {
  /** `http://127.0.0.1:PORT`: a file `f` of the root is at `${url}/f` */
  url: string
  stop: () => Promise<void>
}

/** nginx serving `root` read-only until stop(). */
export async function startNginx (root: string): Promise<Nginx> {
  const bin = ensureNginx()
  const dir = mkdtempSync(join(tmpdir(), 'pgkeep-bench-nginx-'))
  const port = await freePort()
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(n => `${n}_temp_path ${join(dir, n)};`).join(' ')
  // master_process off: one process as the current user, so it reads what we can read whoever that is
  writeFileSync(join(dir, 'nginx.conf'), `
daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  ${temp}
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / { }
  }
}
`)
  const child: ChildProcess = spawn(bin, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'inherit'] })
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${port}`
  // up once it answers; a config it refuses ends the process instead
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited ${child.exitCode}; see ${join(dir, 'error.log')}`)
    const ok = await fetch(`${url}/`, { method: 'HEAD' }).then(() => true, () => false)
    if (ok) break
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    url,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGQUIT')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
