import { EventEmitter } from 'node:events'

/**
 * A pg Client double that answers every query with `result` on the next macrotask, without any
 * network or protocol work. Pools built on it measure the pool + wrapper CPU alone: the
 * instrumentation's own cost per query, with far less noise than against a real server.
 */
export function nullPgClient(result: object): new () => EventEmitter {
  return class NullClient extends EventEmitter {
    _queryable = true
    _ending = false
    connect(cb?: (err: Error | null) => void): Promise<void> | void {
      if (cb) return void setImmediate(cb, null)
      return Promise.resolve()
    }
    query(
      _text: unknown,
      values: unknown,
      cb?: (err: Error | null, res: unknown) => void,
    ): unknown {
      const done = (typeof values === 'function' ? values : cb) as
        ((err: Error | null, res: unknown) => void) | undefined
      if (typeof done === 'function') return void setImmediate(done, null, result)
      return new Promise((r) => setImmediate(r, result))
    }
    end(cb?: () => void): Promise<void> | void {
      this._ending = true
      if (cb) return void setImmediate(cb)
      return Promise.resolve()
    }
  }
}
