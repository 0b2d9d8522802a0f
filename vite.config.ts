import { defineConfig } from 'vite'
import { svelte } from '@sveltejs/vite-plugin-svelte'

export default defineConfig({
  root: 'client',
  plugins: [svelte()],
  build: { outDir: '../dist/client', emptyOutDir: true, reportCompressedSize: true },
  // `npx vite` against a running `pgkeep serve` on the default port
  server: { proxy: { '/api': { target: 'http://127.0.0.1:8080', ws: true } } },
})
