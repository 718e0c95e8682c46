import { describe, expect, it } from 'vitest';
import { alterItems, droppedConstraints, renameDroppedConstraints, renamedColumns, renameMap } from '../../../lambdas/core/alter-clause.ts';

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
});
