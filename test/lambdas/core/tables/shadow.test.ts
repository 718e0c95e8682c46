import { describe, expect, it } from 'vitest';
import type { TableInfo } from '../../../../lambdas/core/tables/inspector.ts';
import { captureNames, columnMapping, dropTriggerSql, FERRY_TRIGGER, shadowConstraintName, shadowNames, triggerSql } from '../../../../lambdas/core/tables/shadow.ts';

const t = { database: 'edxapp', table: 'courseware_studentmodule' };

function table(...names: string[]): TableInfo {
  return {
    ref: t,
    engine: 'InnoDB',
    uniqueIndexes: [{ name: 'PRIMARY', columns: ['id'], parts: [{ column: 'id', prefix: null }], whole: true, ordered: true }],
    columns: names.map((name) => ({ name, dataType: 'int', columnType: 'int(11)', nullable: true, generated: name.startsWith('gen'), charset: null, collation: null })),
  };
}

describe('shadow and triggers', () => {
  it('names the shadow and the old table beside the original', () => {
    expect(shadowNames(t)).toEqual({
      shadow: { database: 'edxapp', table: '_courseware_studentmodule_new' },
      old: { database: 'edxapp', table: '_courseware_studentmodule_old' },
    });
  });

  it('gives triggers and the capture log short, stable, recognisable names', () => {
    const a = captureNames('csm-bigint', t);
    expect(a).toEqual(captureNames('csm-bigint', t));
    expect(a).not.toEqual(captureNames('other', t));
    for (const n of [a.insert, a.update, a.delete]) expect(n).toMatch(FERRY_TRIGGER);
    expect(a.log.table).toMatch(/^_ferry_[0-9a-f]{12}_log$/);
  });

  it('writes each row before it changes or deletes it, never looks for a row that is not there, logs what the shadow refused, never REPLACEs, every identifier quoted', () => {
    const [del, upd, ins] = triggerSql('m', t, { columns: ['id'], sameRow: ['PRIMARY'] }, { source: ['id', 'state'], target: ['id', 'State2'] }) as [string, string, string];
    const sh = '`edxapp`.`_courseware_studentmodule_new`';
    const log = '`edxapp`.`' + captureNames('m', t).log.table + '`';
    // made delete first and insert last, so a row is in the shadow only once every trigger that could take it out exists
    expect(del).toMatch(/AFTER DELETE ON `edxapp`.`courseware_studentmodule` FOR EACH ROW BEGIN/);
    expect(ins).toMatch(/AFTER INSERT ON `edxapp`.`courseware_studentmodule` FOR EACH ROW BEGIN/);
    expect(ins).toContain(`INSERT IGNORE INTO ${sh} (\`id\`, \`State2\`) VALUES (NEW.\`id\`, NEW.\`state\`);`);
    expect(ins).toContain(`INSERT INTO ${log} (\`row_id\`, event, message) VALUES (NEW.\`id\`, 'insert', LEFT(IFNULL(m, 'not written'), 500))`);
    // a delete writes the old row (when it is missing) before it deletes it: no DELETE ever looks for a missing row
    expect(del).toContain(`INSERT IGNORE INTO ${sh} (\`id\`, \`State2\`) VALUES (OLD.\`id\`, OLD.\`state\`); DELETE IGNORE FROM ${sh} WHERE ${sh}.\`id\` = OLD.\`id\`;`);
    // an update writes the new row, and updates in place only a row that was there already
    expect(upd).toContain(`IF NEW.\`id\` <=> OLD.\`id\` THEN SET h = NULL; INSERT IGNORE INTO ${sh} (\`id\`, \`State2\`) VALUES (NEW.\`id\`, NEW.\`state\`);`);
    expect(upd).toContain(`IF p = 1 THEN SET h = NULL; UPDATE ${sh} SET \`id\` = NEW.\`id\`, \`State2\` = NEW.\`state\` WHERE ${sh}.\`id\` = OLD.\`id\`;`);
    // a key change takes the old row out before the new one (which may take its unique values) goes in
    expect(upd.indexOf(`ELSE SET h = NULL; INSERT IGNORE INTO ${sh} (\`id\`, \`State2\`) VALUES (OLD.`)).toBeGreaterThan(0);
    // a refusal is caught and logged; a deadlock or a killed query is raised again
    for (const sql of [del, upd, ins]) {
      expect(sql).toMatch(/DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN GET DIAGNOSTICS CONDITION 1 x = MYSQL_ERRNO, h = MESSAGE_TEXT; IF x IN \([0-9, ]*\b1213\b[0-9, ]*\) THEN RESIGNAL; END IF; END;/);
      expect(sql).toMatch(/\b1205\b.*\b1317\b.*RESIGNAL/);
      expect(sql).not.toMatch(/REPLACE|SELECT/);
    }
    expect(dropTriggerSql('m', t)).toHaveLength(3);
  });

  it('maps columns through the renames of the clause, case-insensitively, leaving out dropped and generated ones', () => {
    const before = table('id', 'c2', 'grade', 'gone', 'gen_x');
    const after = table('id', 'c3', 'Grade', 'added', 'gen_x');
    expect(columnMapping(before, after, 'CHANGE c2 c3 int NOT NULL, MODIFY GRADE bigint, DROP COLUMN gone, ADD COLUMN added int')).toEqual({
      source: ['id', 'c2', 'grade'],
      target: ['id', 'c3', 'Grade'],
    });
  });

  it("names the table's own foreign keys on the shadow with a leading underscore, added or taken away", () => {
    expect(shadowConstraintName('fk_user')).toBe('_fk_user');
    expect(shadowConstraintName('_fk_user')).toBe('fk_user');
  });
});
