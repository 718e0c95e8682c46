import { describe, expect, it } from 'vitest';
import { alterItems, setsAutoIncrement, droppedColumns, droppedConstraints, renameDroppedConstraints, renamedColumns, renameMap } from '../../../lambdas/core/alter-clause.ts';

describe('alter clause', () => {
  it('splits items at top-level commas only', () => {
    expect(alterItems("ADD COLUMN a enum('x,y', 'z') NOT NULL DEFAULT 'x,y', ADD KEY k (a, b), MODIFY `c,d` int COMMENT 'a, b'")).toEqual([
      "ADD COLUMN a enum('x,y', 'z') NOT NULL DEFAULT 'x,y'",
      'ADD KEY k (a, b)',
      "MODIFY `c,d` int COMMENT 'a, b'",
    ]);
  });

  it('finds the renames of CHANGE and RENAME COLUMN, quoted or not', () => {
    expect(renamedColumns('CHANGE c2 c3 int NOT NULL, change column `grade` `score` double AFTER id, RENAME COLUMN x TO `Y`, MODIFY z bigint')).toEqual([
      { from: 'c2', to: 'c3' },
      { from: 'grade', to: 'score' },
      { from: 'x', to: 'Y' },
    ]);
  });

  it('maps names case-insensitively, and leaves others as they are', () => {
    const to = renameMap('CHANGE C2 c3 int');
    expect([to('c2'), to('C2'), to('other')]).toEqual(['c3', 'c3', 'other']);
  });

  it('names the foreign keys a clause drops and can rename them', () => {
    const clause = 'DROP FOREIGN KEY fk_user, ADD COLUMN n int, DROP CONSTRAINT `fk_course`';
    expect(droppedConstraints(clause)).toEqual(['fk_user', 'fk_course']);
    expect(renameDroppedConstraints(clause, (n) => `_${n}`)).toBe('DROP FOREIGN KEY `_fk_user`, ADD COLUMN n int, DROP CONSTRAINT `_fk_course`');
  });

  it('names the columns a clause drops, not its indexes, keys or constraints', () => {
    const clause = 'drop column c1, add column c1 int not null default 47, DROP `Key`, DROP INDEX k, DROP PRIMARY KEY, DROP FOREIGN KEY f, DROP CONSTRAINT c, DROP CHECK ck, DROP IF EXISTS gone, DROP COLUMN `index`';
    expect([...droppedColumns(clause)].sort()).toEqual(['c1', 'gone', 'index', 'key']);
  });

  it('tells a table AUTO_INCREMENT option from a column attribute', () => {
    expect(setsAutoIncrement('AUTO_INCREMENT=7')).toBe(true);
    expect(setsAutoIncrement('ADD COLUMN n int, ENGINE=InnoDB AUTO_INCREMENT 100')).toBe(true);
    expect(setsAutoIncrement('MODIFY id bigint unsigned NOT NULL AUTO_INCREMENT')).toBe(false);
    expect(setsAutoIncrement("ADD COLUMN note varchar(40) DEFAULT 'AUTO_INCREMENT=3'")).toBe(false);
  });
});
