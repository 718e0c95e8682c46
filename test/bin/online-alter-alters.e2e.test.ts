import { describe, expect, it } from 'vitest';
import { runFerry, startFerry, tempDir } from '../helpers/cli.ts';
import { alterScenario, asApplication, checkpointOf, CSM, tableContent, tableSchema, whileCopying, type AlterScenario } from '../helpers/alter-scenario.ts';

/**
 * The ALTERs real teams run, each with the application writing during the run: the result must be
 * what a plain ALTER of the same data gives, schema included, or the migration must stop loudly
 * having deleted nothing and taken its triggers back.
 */
describe('ferry local online-alter, ALTER by ALTER', () => {
  const local = (sc: AlterScenario, overrides: Record<string, unknown>, approve = ['--approve', 'all']) =>
    runFerry(['local', 'online-alter', '--input', sc.inputFile({ cleanup: { mode: 'drop' }, ...overrides }), '--state-dir', sc.stateDir, ...approve]);

  /** Runs the ALTER through ferry with the writer going, then the same ALTER plainly on `reference`, and compares. */
  async function likePlainAlter(sc: AlterScenario, alter: string, overrides: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const writer = sc.startWriter();
    const run = await local(sc, { alter, ...overrides }).finally(() => writer.stop());
    const counts = await writer.stop();
    expect(run.code, run.stderr).toBe(0);
    expect(counts.inserts + counts.updates + counts.deletes).toBeGreaterThan(10);
    await sc.conn.query(`ALTER TABLE \`${sc.db}\`.reference ${alter}`);
    expect(await tableContent(sc.conn, sc.db, CSM)).toEqual(await tableContent(sc.conn, sc.db, 'reference'));
    expect(await tableSchema(sc.conn, sc.db, CSM)).toBe(await tableSchema(sc.conn, sc.db, 'reference'));
    expect(await sc.triggers()).toEqual([]);
    return run.last!;
  }

  it('renames a column and moves it, and changes the case of another: every value follows its column', async () => {
    const sc = await alterScenario(3000);
    try {
      const last = await likePlainAlter(sc, "CHANGE max_grade max_score double NULL AFTER id, MODIFY DONE varchar(8) NOT NULL DEFAULT 'na'");
      expect((await tableContent(sc.conn, sc.db, CSM)).columns.slice(0, 2)).toEqual(['id', 'max_score']);
      expect(last).toMatchObject({ phase: 'done' });
    } finally {
      await sc.close();
    }
  });

  it('adds a NOT NULL column without a default while the application inserts rows that do not name it', async () => {
    const sc = await alterScenario(3000);
    try {
      const alter = 'ADD COLUMN attempts int NOT NULL';
      const writer = sc.startWriter();
      const running = startFerry(['local', 'online-alter', '--input', sc.inputFile({ alter, cleanup: { mode: 'drop' } }), '--state-dir', sc.stateDir, '--approve', 'cleanup']);
      void running.done.finally(() => writer.stop());
      await running.waitFor(/waiting for approval "cutover"/);
      // the application's inserts, which do not name the new column, never failed; it is updated before the cut-over
      const counts = await writer.stop();
      expect(counts.inserts).toBeGreaterThan(3);
      expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr).toBe(0);
      await sc.conn.query(`ALTER TABLE \`${sc.db}\`.reference ${alter}`);
      expect(await tableContent(sc.conn, sc.db, CSM)).toEqual(await tableContent(sc.conn, sc.db, 'reference'));
      expect(await tableSchema(sc.conn, sc.db, CSM)).toBe(await tableSchema(sc.conn, sc.db, 'reference'));
    } finally {
      await sc.close();
    }
  });

  it('keeps the AUTO_INCREMENT the ALTER sets when it is above the table’s', async () => {
    const sc = await alterScenario(2000);
    try {
      await likePlainAlter(sc, 'MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT, AUTO_INCREMENT = 5000000');
      const [r] = await sc.conn.query('SELECT AUTO_INCREMENT AS ai FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [sc.db, CSM]);
      expect(BigInt((r as { ai: string }[])[0]!.ai)).toBeGreaterThanOrEqual(5000000n);
    } finally {
      await sc.close();
    }
  });

  it('drops a column and adds one of the same name in one clause: a new column with its default, as a plain ALTER gives', async () => {
    const sc = await alterScenario(2000);
    try {
      await likePlainAlter(sc, 'DROP COLUMN max_grade, ADD COLUMN max_grade double NOT NULL DEFAULT 47');
      const [r] = await sc.conn.query(`SELECT COUNT(*) AS n FROM \`${sc.db}\`.${CSM} WHERE max_grade <> 47`);
      expect(Number((r as { n: string }[])[0]!.n)).toBe(0);
    } finally {
      await sc.close();
    }
  });

  it('sets AUTO_INCREMENT below the table’s, over ids handed out and deleted, as a plain ALTER does; and keeps a row whose id is 0', async () => {
    const sc = await alterScenario(10);
    try {
      const make = async (name: string) => {
        await sc.conn.query(`CREATE TABLE \`${sc.db}\`.${name} (id int auto_increment, i int not null, primary key (id)) auto_increment=1;
          SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO'); INSERT INTO \`${sc.db}\`.${name} VALUES (0, 5);
          INSERT INTO \`${sc.db}\`.${name} VALUES (NULL, 11), (NULL, 13), (NULL, 17), (NULL, 23), (NULL, 29), (NULL, 31), (NULL, 37);
          SET SESSION sql_mode = REPLACE(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO', ''); DELETE FROM \`${sc.db}\`.${name} WHERE id >= 5`);
      };
      await make('ai_table');
      await make('ai_reference');
      const alter = 'AUTO_INCREMENT=7';
      const run = await runFerry(['local', 'online-alter', '--input', sc.inputFile({ table: { connection: 'edxapp', database: sc.db, table: 'ai_table' }, alter, cleanup: { mode: 'drop' } }), '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(run.code, run.stderr).toBe(0);
      await sc.conn.query(`ALTER TABLE \`${sc.db}\`.ai_reference ${alter}`);
      const ai = async (name: string) => ((await sc.conn.query('SELECT AUTO_INCREMENT AS ai FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [sc.db, name]))[0] as { ai: string }[])[0]!.ai;
      expect(String(await ai('ai_table'))).toBe(String(await ai('ai_reference')));
      expect(String(await ai('ai_table'))).toBe('7');
      expect(await tableContent(sc.conn, sc.db, 'ai_table')).toEqual(await tableContent(sc.conn, sc.db, 'ai_reference'));
      const [zero] = await sc.conn.query(`SELECT i FROM \`${sc.db}\`.ai_table WHERE id = 0`);
      expect(zero).toEqual([{ i: 5 }]);
    } finally {
      await sc.close();
    }
  });

  it('keeps the table’s own foreign keys, cascades included, named with a leading underscore', async () => {
    const sc = await alterScenario(3000);
    try {
      const db = `\`${sc.db}\``;
      await sc.conn.query(`CREATE TABLE ${db}.courses (id varchar(255) NOT NULL PRIMARY KEY)`);
      await sc.conn.query(`INSERT INTO ${db}.courses VALUES ('course-v1:0'), ('course-v1:1'), ('course-v1:2'), ('course-v1:3'), ('course-v1:4'), ('course-v1:live')`);
      await sc.conn.query(`ALTER TABLE ${db}.${CSM} ADD CONSTRAINT fk_course FOREIGN KEY (course_id) REFERENCES ${db}.courses (id) ON DELETE CASCADE`);
      await sc.conn.query(`ALTER TABLE ${db}.reference ADD CONSTRAINT fk_course_ref FOREIGN KEY (course_id) REFERENCES ${db}.courses (id) ON DELETE CASCADE`);
      const writer = sc.startWriter();
      const running = startFerry(['local', 'online-alter', '--input', sc.inputFile({ cleanup: { mode: 'drop' } }), '--state-dir', sc.stateDir, '--approve', 'cleanup']);
      void running.done.finally(() => writer.stop());
      await running.waitFor(/waiting for approval "cutover"/);
      // a course goes while the triggers capture changes: InnoDB's cascade fires no trigger, the shadow's own foreign key cascades too
      await sc.conn.query(`DELETE FROM ${db}.courses WHERE id = 'course-v1:3'`);
      expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
      const run = await running.done;
      await writer.stop();
      expect(run.code, run.stderr).toBe(0);
      await sc.conn.query(`ALTER TABLE ${db}.reference MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT`);
      expect(await tableContent(sc.conn, sc.db, CSM)).toEqual(await tableContent(sc.conn, sc.db, 'reference'));
      // the one difference a plain ALTER would not make: the foreign key's name (the reference table needs a name of its own)
      expect(await tableSchema(sc.conn, sc.db, CSM)).toBe((await tableSchema(sc.conn, sc.db, 'reference')).replace('KEY `fk_course_ref`', 'KEY `fk_course`'));
      const [fks] = await sc.conn.query(`SELECT CONSTRAINT_NAME AS n, DELETE_RULE AS d FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, [sc.db, CSM]);
      expect(fks).toEqual([{ n: '_fk_course', d: 'CASCADE' }]);
      const [left] = await sc.conn.query(`SELECT COUNT(*) AS n FROM ${db}.${CSM} WHERE course_id = 'course-v1:3'`);
      expect(String((left as { n: string }[])[0]!.n)).toBe('0');
    } finally {
      await sc.close();
    }
  });

  it('refuses a new unique key unless allowed, and then never deletes a row: a clash during the copy stops the migration and takes its triggers back', async () => {
    const sc = await alterScenario(20000);
    try {
      const alter = 'ADD UNIQUE KEY one_module_per_student (student_id)';
      const refused = await local(sc, { alter });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/adds or narrows unique key one_module_per_student \(student_id\).*"allowNewUniqueKeys": true/);
      expect(await sc.triggers()).toEqual([]);
      const before = await tableContent(sc.conn, sc.db, CSM);
      const running = startFerry(['local', 'online-alter', '--input', sc.inputFile({ alter, allowNewUniqueKeys: true, chunk: { targetMillis: 10, minRows: 50, maxRows: 200 } }), '--state-dir', sc.stateDir, '--approve', 'all'], { FERRY_LOCAL_RETRY_MILLIS: '50' });
      await whileCopying(sc, 2000n, running);
      // the application writes a second module for student 7 — fine for the old table, a clash for the new one
      await asApplication(() => sc.conn.query(`INSERT INTO \`${sc.db}\`.${CSM} (module_id, student_id, created, modified, course_id) VALUES ('another', 7, NOW(6), NOW(6), 'c')`));
      const run = await running.done;
      expect(run.code, run.stderr).toBe(1);
      expect(run.last).toMatchObject({ error: 'VerificationFailed', cause: expect.stringMatching(/Duplicate entry '7' for key 'one_module_per_student'.*Nothing was deleted/) });
      expect(await sc.triggers()).toEqual([]);
      expect(await sc.tables()).toEqual(['_ferry_checkpoints', CSM, 'reference']);
      expect(await checkpointOf(sc)).toBeNull();
      const after = await tableContent(sc.conn, sc.db, CSM);
      expect(after.columns).toEqual(before.columns);
      expect(BigInt(after.rows)).toBe(BigInt(before.rows) + 1n);
    } finally {
      await sc.close();
    }
  });

  it('with a new unique key allowed, a passing clash made while the cut-over approval waits heals before the swap', async () => {
    const sc = await alterScenario(2000);
    try {
      const alter = 'ADD UNIQUE KEY one_module_per_student (student_id)';
      const db = `\`${sc.db}\``;
      // SwapTables' own last look is what is tested here (the re-verification beside the wait, off, would otherwise heal it first)
      const file = sc.inputFile({ alter, allowNewUniqueKeys: true, cleanup: { mode: 'drop' }, reverify: { everySeconds: 0 } });
      const first = startFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir, '--approve', 'cleanup']);
      await first.waitFor(/waiting for approval "cutover"/);
      // two students swap modules in one transaction: a passing clash in the shadow that heals by the end of it
      await sc.conn.query(`START TRANSACTION; UPDATE ${db}.${CSM} SET student_id = 2 WHERE id = 1; UPDATE ${db}.${CSM} SET student_id = 1 WHERE id = 2; COMMIT`);
      expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
      const healed = await first.done;
      expect(healed.code, healed.stderr).toBe(0);
      expect(healed.last).toMatchObject({ rowsWrittenAgain: 1 });
      expect(await sc.tables()).toEqual(['_ferry_checkpoints', CSM, 'reference']);
      const [rows] = await sc.conn.query(`SELECT id, student_id AS s FROM ${db}.${CSM} WHERE id IN (1, 2) ORDER BY id`);
      expect(rows).toEqual([{ id: 1, s: 2 }, { id: 2, s: 1 }]);
    } finally {
      await sc.close();
    }
  });

  it('with a new unique key allowed, a clash made while the cut-over approval waits stops the swap, deletes nothing and takes the triggers back', async () => {
    const sc = await alterScenario(2000);
    try {
      const db = `\`${sc.db}\``;
      const before = await tableSchema(sc.conn, sc.db, CSM);
      // SwapTables' own last look is what is tested here; with the re-verification on, it refuses the swap first (test below)
      const file = sc.inputFile({ alter: 'ADD UNIQUE KEY one_module_per_student (student_id)', allowNewUniqueKeys: true, cleanup: { mode: 'drop' }, reverify: { everySeconds: 0 } });
      const running = startFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir, '--approve', 'cleanup'], { FERRY_LOCAL_RETRY_MILLIS: '50' });
      await running.waitFor(/waiting for approval "cutover"/);
      await sc.conn.query(`UPDATE ${db}.${CSM} SET student_id = 4 WHERE id = 3`);
      expect((await runFerry(['approve', sc.migrationId, '--step', 'cutover', '--state-dir', sc.stateDir])).code).toBe(0);
      const run = await running.done;
      expect(run.code, run.stderr).toBe(1);
      expect(run.last).toMatchObject({ error: 'VerificationFailed', cause: expect.stringMatching(/the application's update of id 3 .*Duplicate entry '4' for key 'one_module_per_student'/) });
      expect(await tableSchema(sc.conn, sc.db, CSM)).toBe(before);
      expect(await sc.triggers()).toEqual([]);
      const [rows] = await sc.conn.query(`SELECT id FROM ${db}.${CSM} WHERE student_id = 4 ORDER BY id`);
      expect(rows).toEqual([{ id: 3 }, { id: 4 }]);
    } finally {
      await sc.close();
    }
  });

  it('a value the altered column cannot hold, written while the copy runs, stops the migration with the reason and leaves the table as it was', async () => {
    const sc = await alterScenario(20000);
    try {
      const before = await tableSchema(sc.conn, sc.db, CSM);
      const running = startFerry(['local', 'online-alter', '--input', sc.inputFile({ alter: 'MODIFY state varchar(20) NULL', chunk: { targetMillis: 10, minRows: 50, maxRows: 200 } }), '--state-dir', sc.stateDir, '--approve', 'all'], { FERRY_LOCAL_RETRY_MILLIS: '50' });
      await whileCopying(sc, 2000n, running);
      // the application's write succeeds: the trigger writes what it can and logs the rest
      await asApplication(() => sc.conn.query(`INSERT INTO \`${sc.db}\`.${CSM} (module_id, student_id, state, created, modified, course_id) VALUES ('m', 5555555, ?, NOW(6), NOW(6), 'c')`, ['{"a much longer state": true}']));
      const run = await running.done;
      expect(run.code, run.stderr).toBe(1);
      expect(run.last).toMatchObject({ error: 'VerificationFailed', cause: expect.stringMatching(/(Data too long|Data truncated) for column 'state'/) });
      expect(await sc.triggers()).toEqual([]);
      expect(await sc.tables()).toEqual(['_ferry_checkpoints', CSM, 'reference']);
      expect(await checkpointOf(sc)).toBeNull();
      expect(await tableSchema(sc.conn, sc.db, CSM)).toBe(before);
    } finally {
      await sc.close();
    }
  });

  it('repairs a range of the shadow that differs from the table, and ends equal to it', async () => {
    const sc = await alterScenario(20000);
    const writer = sc.startWriter();
    try {
      const running = startFerry(['local', 'online-alter', '--input', sc.inputFile({ chunk: { targetMillis: 10, minRows: 50, maxRows: 200 }, cleanup: { mode: 'drop' } }), '--state-dir', sc.stateDir, '--approve', 'all']);
      await whileCopying(sc, 2000n, running);
      // wrong rows land in the shadow ahead of the copy, which keeps what it finds there (INSERT IGNORE): verification must catch them
      const cols = 'id, module_type, module_id, student_id, state, grade, created, modified, max_grade, done, course_id';
      const [r] = await asApplication(() =>
        sc.conn.query(`INSERT IGNORE INTO \`${sc.db}\`.\`_${CSM}_new\` (${cols}) SELECT ${cols.replace('state', "'corrupted'")} FROM \`${sc.db}\`.${CSM} WHERE id > 18000 ORDER BY id LIMIT 300`),
      );
      expect((r as { affectedRows: number }).affectedRows).toBeGreaterThan(100);
      const run = await running.done;
      await writer.stop();
      expect(run.code, run.stderr).toBe(0);
      expect(Number(run.last!.rangesRepaired)).toBeGreaterThan(0);
      await sc.conn.query(`ALTER TABLE \`${sc.db}\`.reference MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT`);
      expect(await tableContent(sc.conn, sc.db, CSM)).toEqual(await tableContent(sc.conn, sc.db, 'reference'));
    } finally {
      await writer.stop().catch(() => undefined);
      await sc.close();
    }
  });

  it('ferry abandon takes the triggers, the shadow and the capture log back, and a new run starts afresh', async () => {
    const sc = await alterScenario(2000);
    try {
      const before = await tableSchema(sc.conn, sc.db, CSM);
      const file = sc.inputFile({ cleanup: { mode: 'drop' } });
      const running = startFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir]);
      await running.waitFor(/waiting for approval "cutover"/);
      expect(await sc.triggers()).toHaveLength(3);
      const busy = await runFerry(['abandon', sc.migrationId, '--state-dir', sc.stateDir]);
      expect(busy.code).toBe(2);
      expect(busy.stderr).toMatch(/another ferry local run .* is running/);
      running.child.kill('SIGTERM');
      await running.done;
      const gone = await runFerry(['abandon', sc.migrationId, '--state-dir', sc.stateDir]);
      expect(gone.code, gone.stderr).toBe(0);
      expect(gone.stderr).toMatch(/dropped trigger _ferry_\w+_ins, trigger _ferry_\w+_upd, trigger _ferry_\w+_del, _courseware_studentmodule_new, _ferry_\w+_log; courseware_studentmodule is as it was/);
      expect(await sc.triggers()).toEqual([]);
      expect(await sc.tables()).toEqual(['_ferry_checkpoints', CSM, 'reference']);
      expect(await tableSchema(sc.conn, sc.db, CSM)).toBe(before);
      const again = await runFerry(['local', 'online-alter', '--input', file, '--state-dir', sc.stateDir, '--approve', 'all']);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(/shadow _courseware_studentmodule_new created/);
    } finally {
      await sc.close();
    }
  });

  /**
   * With a migration of the table waiting for its cut-over approval (its triggers and shadow in
   * place), `act` tries another migration id on the same table; then the first one's triggers and
   * shadow are as they were, and the application's writes to the table go on.
   */
  async function besideAWaitingMigration(act: (sc: AlterScenario, triggers: string[]) => Promise<void>): Promise<void> {
    const sc = await alterScenario(1000);
    try {
      const running = startFerry(['local', 'online-alter', '--input', sc.inputFile(), '--state-dir', sc.stateDir]);
      await running.waitFor(/waiting for approval "cutover"/);
      const triggers = await sc.triggers();
      expect(triggers).toHaveLength(3);
      const tables = await sc.tables();
      expect(tables).toContain('_courseware_studentmodule_new');
      await act(sc, triggers);
      expect(await sc.triggers()).toEqual(triggers);
      expect(await sc.tables()).toEqual(tables);
      // the application's writes go on: the triggers still have the table they write to
      await sc.conn.query(`INSERT INTO \`${sc.db}\`.${CSM} (module_id, student_id, created, modified, course_id) VALUES ('m-beside', 424242, NOW(6), NOW(6), 'c')`);
      running.child.kill('SIGTERM');
      await running.done;
    } finally {
      await sc.close();
    }
  }

  it('ferry abandon of another migration id naming the same table leaves the running migration\'s triggers and shadow, and the application writes on', async () => {
    await besideAWaitingMigration(async (sc, triggers) => {
      // an input under another id that names this table (a copy-paste, a typo), from another state dir
      const other = await runFerry(['abandon', `${sc.migrationId}-other`, '--input', sc.inputFile({ migrationId: `${sc.migrationId}-other` }), '--state-dir', tempDir()]);
      expect(other.code, other.stderr).toBe(2);
      expect(other.stderr).toMatch(new RegExp(`${CSM} has the capture triggers of another migration .*${triggers[0]}.*nothing was dropped`));
    });
  });

  it('a second migration id on a table another migration is altering is refused before it writes anything', async () => {
    await besideAWaitingMigration(async (sc) => {
      const input = sc.inputFile({ migrationId: `${sc.migrationId}-second` });
      for (const args of [['plan', 'online-alter', '--input', input], ['local', 'online-alter', '--input', input, '--state-dir', tempDir(), '--approve', 'all']]) {
        const second = await runFerry(args);
        expect(second.code, `${args[0]}: ${second.stderr}`).toBe(2);
      }
    });
  });

  // gh-ost's swap-pk-uk, swap-uk and swap-uk-uk: the ALTER moves the table's key, and a unique key on
  // the integer id that both shapes have is what ferry copies, captures and verifies by.
  it.each([
    ['moves the primary key to the unique key it had, keeping one on id', 'DROP PRIMARY KEY, DROP KEY student_module, ADD PRIMARY KEY (student_id, module_id, course_id), ADD UNIQUE KEY row_id (id)', null],
    ['drops the primary key for a unique key on id', 'DROP PRIMARY KEY, ADD UNIQUE KEY row_id (id)', null],
    ['swaps the unique key a table without a primary key is stored by for another on id', 'DROP KEY id_uidx, ADD UNIQUE KEY id2_uidx (id), MODIFY id bigint NOT NULL AUTO_INCREMENT', 'DROP PRIMARY KEY, ADD UNIQUE KEY id_uidx (id)'],
  ])('%s, as a plain ALTER would', async (_, alter, before) => {
    const sc = await alterScenario(3000);
    try {
      if (before) for (const t of [CSM, 'reference']) await sc.conn.query(`ALTER TABLE \`${sc.db}\`.${t} ${before}`);
      const plan = await runFerry(['plan', 'online-alter', '--input', sc.inputFile({ alter }), '--json']);
      expect(plan.code, plan.stderr).toBe(0);
      expect((JSON.parse(plan.stdout) as { moves: string[] }).moves.join('\n')).toContain(before ? 'by unique key id_uidx (id)' : 'by the primary key (id)');
      const last = await likePlainAlter(sc, alter);
      expect(last).toMatchObject({ phase: 'done' });
      const [rows] = await sc.conn.query(`SELECT state FROM \`${sc.db}\`._ferry_checkpoints WHERE migration_id = ?`, [sc.migrationId]);
      expect(JSON.parse((rows as { state: string }[])[0]!.state).copyKey).toEqual({ column: 'id', index: before ? 'id_uidx' : 'PRIMARY' });
    } finally {
      await sc.close();
    }
  });

  it('moves the primary key to (id, student_id), which no longer names a row by id alone: copies by that composite key', async () => {
    const sc = await alterScenario(3000);
    try {
      await likePlainAlter(sc, 'DROP PRIMARY KEY, ADD PRIMARY KEY (id, student_id)');
    } finally {
      await sc.close();
    }
  });

  it('refuses an ALTER that leaves no unique key starting with one of the table’s, naming the keys the altered table would have, and writes nothing', async () => {
    const sc = await alterScenario(500);
    try {
      const before = await tableSchema(sc.conn, sc.db, CSM);
      const run = await local(sc, { alter: 'DROP PRIMARY KEY, DROP KEY student_module, ADD PRIMARY KEY (student_id, id), ADD KEY by_id (id)' });
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toMatch(/alter: must leave a unique key that starts with the columns of one of courseware_studentmodule's \(PRIMARY \(id\), student_module \(student_id, module_id, course_id\)\).*The altered table's unique keys: PRIMARY \(student_id, id\);/);
      expect(await sc.tables()).toEqual([CSM, 'reference']);
      expect(await tableSchema(sc.conn, sc.db, CSM)).toBe(before);
    } finally {
      await sc.close();
    }
  });

  it('copies spatial, bit, JSON and float values as they are, while rows of them are written', async () => {
    const sc = await alterScenario(10);
    try {
      const kinds = '(id int NOT NULL AUTO_INCREMENT PRIMARY KEY, g point NOT NULL, p polygon NULL, b bit(5) NULL, j json NULL, f float NULL)';
      const rows = (from: number, to: number) =>
        `SELECT POINT(seq, seq / 3), IF(seq % 2, ST_GeomFromText('POLYGON((0 0, 1 0, 1 1, 0 0))'), NULL), seq % 32, JSON_OBJECT('a', seq), seq / 7 FROM \`${sc.db}\`.seq_${from}_to_${to}`;
      await sc.conn.query(`CREATE TABLE \`${sc.db}\`.kinds ${kinds}; CREATE TABLE \`${sc.db}\`.kinds_ref ${kinds};
        INSERT INTO \`${sc.db}\`.kinds (g, p, b, j, f) ${rows(1, 3000)}; INSERT INTO \`${sc.db}\`.kinds_ref SELECT * FROM \`${sc.db}\`.kinds`);
      // a write of each kind of value while it runs, to the table and the reference alike
      let writes = 0;
      let going = true;
      const writer = (async () => {
        for (let i = 0; going; i++, writes++) {
          for (const t of ['kinds', 'kinds_ref']) {
            await sc.conn.query(`UPDATE \`${sc.db}\`.${t} SET g = POINT(?, ?), b = ?, j = JSON_OBJECT('w', ?), f = ? WHERE id = ?`, [i, -i, i % 32, i, i / 3, 1 + (i % 3000)]);
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const run = await runFerry(['local', 'online-alter', '--input', sc.inputFile({ table: { connection: 'edxapp', database: sc.db, table: 'kinds' }, alter: 'MODIFY id bigint NOT NULL AUTO_INCREMENT', cleanup: { mode: 'drop' } }), '--state-dir', sc.stateDir, '--approve', 'all']);
      going = false;
      await writer;
      expect(run.code, run.stderr).toBe(0);
      expect(writes).toBeGreaterThan(5);
      const [same] = await sc.conn.query(`SELECT COUNT(*) AS n, SUM(a.g = b.g AND a.p <=> b.p AND a.b <=> b.b AND a.j <=> b.j AND a.f <=> b.f) AS equal FROM \`${sc.db}\`.kinds a JOIN \`${sc.db}\`.kinds_ref b USING (id)`);
      expect(same).toEqual([{ n: '3000', equal: '3000' }]);
    } finally {
      await sc.close();
    }
  });
});
