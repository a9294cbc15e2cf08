// A store that runs a hook before every statement, inside transactions too (with the transaction's handle), for tests
// that record or fail the statements a keeper part makes.
import type { Db } from "../../../keeper/src/store/index.js";

/** What runs before a statement, on the handle it runs on; a throw fails the statement. */
export type QueryHook = (sql: string, params: unknown[] | undefined, db: Db) => void | Promise<void>;

/** `db` with `hook` run before every statement, also in the transactions it opens. */
export function withQueryHook(db: Db, hook: QueryHook): Db {
  return {
    query: async <T>(sql: string, params?: unknown[]) => {
      await hook(sql, params, db);
      return db.query<T>(sql, params);
    },
    transaction: (fn) => db.transaction((tx) => fn(withQueryHook(tx, hook))),
    close: () => db.close(),
  };
}
