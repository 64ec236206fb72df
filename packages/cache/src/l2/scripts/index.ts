import { extendIfOwnerScript, releaseIfOwnerScript } from '@strata/core'
import { deletePublishScript } from './delete-publish-n.js'
import { getOrLockScript } from './get-or-lock-2.js'
import { setPublishScript } from './set-publish-n.js'
import { setVersionsPublishScript } from './set-versions-publish-n.js'
import { unlockPublishScript } from './unlock-publish-1.js'

/** ioredis `defineCommand` options; without numberOfKeys the caller passes the count first. */
export interface ScriptDefinition {
  readonly lua: string
  readonly numberOfKeys?: number
}

// Scripts live in TS string constants (not .lua files) so `tsc` ships them in dist untouched.
// The owner-checked release and extend are shared with @strata/lock through @strata/core.
/** The cache's scripts by the command name they are defined under on its ioredis clients. */
export const scripts = {
  strataSetPub: setPublishScript,
  strataGetOrLock: getOrLockScript,
  strataDelPub: deletePublishScript,
  strataVersionsPub: setVersionsPublishScript,
  strataUnlock: releaseIfOwnerScript,
  strataUnlockPub: unlockPublishScript,
  strataExtend: extendIfOwnerScript,
} satisfies Record<string, ScriptDefinition>
