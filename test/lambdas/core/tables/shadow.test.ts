import { describe, expect, it } from 'vitest';
import { dropTriggerSql, FERRY_TRIGGER, shadowNames, triggerNames, triggerSql } from '../../../../lambdas/core/tables/shadow.ts';

const t = { database: 'edxapp', table: 'courseware_studentmodule' };

describe('shadow and triggers', () => {
  it('names the shadow and the old table beside the original', () => {
    expect(shadowNames(t)).toEqual({
      shadow: { database: 'edxapp', table: '_courseware_studentmodule_new' },
      old: { database: 'edxapp', table: '_courseware_studentmodule_old' },
    });
  });

  it('gives triggers short, stable, recognisable names', () => {
    const a = triggerNames('csm-bigint', t);
    expect(a).toEqual(triggerNames('csm-bigint', t));
    expect(a).not.toEqual(triggerNames('other', t));
    for (const n of Object.values(a)) expect(n).toMatch(FERRY_TRIGGER);
  });

  it('replays inserts and updates with REPLACE, key changes and deletes with DELETE, every identifier quoted', () => {
    const [ins, upd, del] = triggerSql('m', t, shadowNames(t).shadow, 'id', ['id', 'state']);
    expect(ins).toMatch(/AFTER INSERT ON `edxapp`.`courseware_studentmodule` FOR EACH ROW REPLACE INTO `edxapp`.`_courseware_studentmodule_new` \(`id`, `state`\) VALUES \(NEW.`id`, NEW.`state`\)$/);
    expect(upd).toContain('DELETE IGNORE FROM `edxapp`.`_courseware_studentmodule_new` WHERE NOT (OLD.`id` <=> NEW.`id`) AND `id` <=> OLD.`id`;');
    expect(upd).toMatch(/REPLACE INTO .* VALUES \(NEW.`id`, NEW.`state`\); END$/);
    expect(del).toMatch(/AFTER DELETE ON .* DELETE IGNORE FROM `edxapp`.`_courseware_studentmodule_new` WHERE `id` <=> OLD.`id`$/);
    expect(dropTriggerSql('m', t)).toHaveLength(3);
  });
});
