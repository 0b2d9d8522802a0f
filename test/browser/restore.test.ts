import t from 'tap'
import { join } from 'node:path'
import { startAdminStack, ARTIFACTS } from './helpers/stack.ts'
import { recordAttribute, recorded } from './helpers/browser.ts'

// ~12 MB of table data: the restore is fed through gunzip and paced by COPY, so its percent moves
const { stack, admin, page, pageErrors } = await startAdminStack(t, { database: 'browser_restore', tables: 4, mbPerTable: 3 })

t.test('a completed backup is restored from the list into a new database, followed live to completed', async t => {
  const backup = await admin.create({ format: 'custom', compression: 'gzip', level: 1 })
  t.equal(await admin.waitTerminal(backup.id), 'completed')
  await page.evaluate(() => { (window as unknown as { sameDocument: boolean }).sameDocument = true })
  await page.locator('[data-state="online"]').waitFor()

  const row = page.locator(`tr[data-backup-id="${backup.id}"][data-status="completed"]`)
  await row.waitFor()
  await row.getByRole('button', { name: 'Restore' }).click()
  const dialog = page.getByRole('dialog', { name: /^Restore / })
  await dialog.getByLabel('Target database').fill('browser_restore_copy')
  const create = dialog.getByLabel('Create the database first')
  if (!await create.isChecked()) await create.check()
  await recordAttribute(page, 'percents', 'dialog .percent', 'data-percent')
  await recordAttribute(page, 'restoreStatuses', 'dialog [data-restore-status]', 'data-restore-status')
  // how many percent figures a sighted user sees at once in the dialog (the screen-reader line aside), at every change
  await page.evaluate(() => {
    const w = window as unknown as { percentShown: number[] }
    w.percentShown = []
    const count = (): void => {
      const box = document.querySelector('dialog[open]')
      if (!box) return
      const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT)
      let n = 0
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (node.parentElement?.closest('.sr-only')) continue
        n += (node.textContent ?? '').match(/\d+(?:\.\d+)?\s?(?:%|percent)/g)?.length ?? 0
      }
      w.percentShown.push(n)
    }
    new MutationObserver(count).observe(document.body, { subtree: true, childList: true, characterData: true })
  })
  await dialog.getByRole('button', { name: 'Restore' }).click()

  await dialog.locator('[data-restore-status="completed"]').waitFor({ timeout: 90_000 })
  const shown = await page.evaluate(() => (window as unknown as { percentShown: number[] }).percentShown)
  t.equal(Math.max(...shown), 1, 'the dialog never shows two percent figures at once')
  await page.screenshot({ path: join(ARTIFACTS, 'restore-completed-1280.png'), fullPage: true })
  const percents = (await recorded(page, 'percents')).filter(Boolean).map(Number)
  t.equal(percents.at(-1), 100, `ends at 100 % (${percents.join(' → ')})`)
  t.ok(percents.some(p => p > 0 && p < 100), 'a percent between 0 and 100 was shown on the way')
  t.same([...percents].sort((a, b) => a - b), percents, 'the percent never went backwards')
  const statuses = await recorded(page, 'restoreStatuses')
  t.ok(statuses.includes('running'), `went through running (${statuses.join(' → ')})`)
  t.equal(statuses.at(-1), 'completed')
  t.match(await dialog.getByRole('status').innerText(), /completed/)
  await page.locator('.toast[data-kind="success"]').filter({ hasText: 'Restore into browser_restore_copy completed' }).waitFor()
  t.equal(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument), true, 'no page reload happened')

  const tables = await stack.cluster.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", 'browser_restore_copy')
  t.equal(tables.trim(), '4', 'the restored database has every table')
  t.equal((await stack.cluster.psql('SELECT count(*) FROM public.part_0', 'browser_restore_copy')).trim(),
    (await stack.cluster.psql('SELECT count(*) FROM public.part_0', stack.database)).trim(), 'with every row')

  await dialog.getByRole('button', { name: 'Close' }).click()
  await dialog.waitFor({ state: 'hidden' })
  t.same(pageErrors, [], 'no uncaught page errors')
})

t.test('a running restore is cancelled from its dialog after confirmation and ends cancelled without a reload', async t => {
  // each row of this table waits in a CHECK constraint on the way back in: the restore lasts while the data stays tiny
  await stack.cluster.psql(`
    CREATE FUNCTION slow_ok(int) RETURNS boolean LANGUAGE plpgsql AS $$
    BEGIN
      IF current_setting('pgkeep.fast', true) IS DISTINCT FROM 'on' THEN PERFORM pg_sleep(0.002); END IF;
      RETURN true;
    END $$;
    CREATE TABLE public.slow (id int CHECK (slow_ok(id)));
    SET pgkeep.fast = on;
    INSERT INTO public.slow SELECT generate_series(1, 20000);
  `, stack.database)
  const backup = await admin.create({ format: 'custom', compression: 'zstd' })
  t.equal(await admin.waitTerminal(backup.id), 'completed')
  await page.evaluate(() => { (window as unknown as { sameDocument: boolean }).sameDocument = true })

  const row = page.locator(`tr[data-backup-id="${backup.id}"][data-status="completed"]`)
  await row.waitFor()
  await row.getByRole('button', { name: 'Restore' }).click()
  const dialog = page.getByRole('dialog', { name: /^Restore / })
  await dialog.getByLabel('Target database').fill('browser_restore_cancelled')
  await dialog.getByRole('button', { name: 'Restore' }).click()
  await dialog.locator('[data-restore-status="running"]').waitFor()
  const copyingSlow = async (): Promise<boolean> => Number(await stack.cluster.psql(
    `SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgkeep-restore-%' AND query LIKE 'COPY public.slow%'`)) > 0
  // pg_restore reports nothing while one COPY runs, so watch the server for it
  for (const deadline = Date.now() + 30_000; !await copyingSlow();) {
    if (Date.now() > deadline) throw new Error('the restore never reached the slow table')
    await new Promise(resolve => setTimeout(resolve, 50))
  }

  await dialog.getByRole('button', { name: 'Cancel restore' }).click()
  const confirm = page.getByRole('dialog', { name: 'Cancel restore?' })
  t.match(await confirm.innerText(), 'browser_restore_cancelled', 'the confirmation names the database')
  t.match(await confirm.innerText(), /left as it was/, 'and says what becomes of it')
  await confirm.getByRole('button', { name: 'Cancel restore' }).click()

  await dialog.locator('[data-restore-status="cancelled"]').waitFor({ timeout: 30_000 })
  t.match(await dialog.getByRole('status').innerText(), /cancelled/)
  t.match(await dialog.locator('.error').innerText(), /CANCELLED/, 'the dialog shows the code')
  t.equal(await dialog.getByRole('button', { name: 'Cancel restore' }).count(), 0, 'nothing left to cancel')
  await page.locator('.toast').filter({ hasText: 'Restore into browser_restore_cancelled cancelled' }).waitFor()
  t.equal(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument), true, 'no page reload happened')
  await page.screenshot({ path: join(ARTIFACTS, 'restore-cancelled-1280.png'), fullPage: true })
  t.equal((await stack.cluster.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'browser_restore_cancelled%'")).trim(), '0',
    'the database it was creating is gone')
  await dialog.getByRole('button', { name: 'Close' }).click()
  t.same(pageErrors, [], 'no uncaught page errors')
})

t.test('a restore into a database that holds objects is refused in the dialog, and merge is offered instead', async t => {
  await stack.cluster.createDatabase('browser_restore_busy')
  await stack.cluster.psql('CREATE TABLE mine (x int)', 'browser_restore_busy')
  const backup = await admin.create({ format: 'custom', compression: 'none' })
  t.equal(await admin.waitTerminal(backup.id), 'completed')
  const row = page.locator(`tr[data-backup-id="${backup.id}"][data-status="completed"]`)
  await row.waitFor()
  await row.getByRole('button', { name: 'Restore' }).click()
  const dialog = page.getByRole('dialog', { name: /^Restore / })
  await dialog.getByLabel('Target database').fill('browser_restore_busy')
  await dialog.getByLabel('Create the database first').uncheck()
  const clean = dialog.getByLabel(/Replace the database/)
  await dialog.getByLabel(/merge/).check()
  t.equal(await clean.isDisabled(), true, 'clean and merge exclude each other')
  await dialog.getByLabel(/merge/).uncheck()
  await dialog.getByRole('button', { name: 'Restore' }).click()
  const refused = dialog.locator('[data-restore-status="refused"]')
  await refused.waitFor()
  t.match(await refused.innerText(), /TARGET_NOT_EMPTY: database "browser_restore_busy" on target "default" is not empty \(table mine\)/)
  t.equal((await stack.cluster.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", 'browser_restore_busy')).trim(), '1', 'nothing was written')
  await dialog.getByRole('button', { name: 'Close' }).click()
  t.same(pageErrors, [], 'no uncaught page errors')
})
