import { describe, expect, it } from 'vitest';
import type { TableInfo } from '../../../../lambdas/core/tables/inspector.ts';
import { captureNames, columnMapping, dropTriggerSql, FERRY_TRIGGER, shadowConstraintName, shadowNames, triggerSql } from '../../../../lambdas/core/tables/shadow.ts';

const t = { database: 'edxapp', table: 'courseware_studentmodule' };

function table(...names: string[]): TableInfo {
  return {
    ref: t,
    engine: 'InnoDB',
    primaryKey: ['id'],
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

  it('replays inserts with INSERT IGNORE, updates in place, deletes by id, logs what the shadow refused, never REPLACEs, every identifier quoted', () => {
    const [ins, upd, del] = triggerSql('m', t, 'id', { source: ['id', 'state'], target: ['id', 'State2'] });
    const log = '`edxapp`.`' + captureNames('m', t).log.table + '`';
    expect(ins).toMatch(/AFTER INSERT ON `edxapp`.`courseware_studentmodule` FOR EACH ROW BEGIN/);
    expect(ins).toContain('INSERT IGNORE INTO `edxapp`.`_courseware_studentmodule_new` (`id`, `State2`) VALUES (NEW.`id`, NEW.`state`);');
    expect(ins).toContain(`INSERT INTO ${log} (row_id, event, message) VALUES (NEW.\`id\`, 'insert', LEFT(IFNULL(m, 'not written'), 500))`);
    expect(upd).toContain('IF NEW.`id` <=> OLD.`id` THEN SET h = NULL; UPDATE `edxapp`.`_courseware_studentmodule_new` SET `id` = NEW.`id`, `State2` = NEW.`state` WHERE `id` = OLD.`id`;');
    // a duplicate on a unique key of the altered table is caught, not raised to the application
    expect(upd).toMatch(/DECLARE CONTINUE HANDLER FOR [0-9, ]*\b1062\b[0-9, ]* GET DIAGNOSTICS CONDITION 1 h = MESSAGE_TEXT;/);
    expect(upd).toContain('ELSE SET h = NULL; INSERT IGNORE INTO `edxapp`.`_courseware_studentmodule_new` (`id`, `State2`) VALUES (NEW.`id`, NEW.`state`);');
    expect(del).toMatch(/AFTER DELETE ON .* DELETE IGNORE FROM `edxapp`.`_courseware_studentmodule_new` WHERE `id` = OLD.`id`$/);
    // no trigger reads the shadow: a locking read inside the application's write
    for (const sql of [ins, upd, del]) expect(sql).not.toMatch(/REPLACE|SELECT/);
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
