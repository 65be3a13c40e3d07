/** `createdAt` → `created_at`: the columns are the fields' snake_case names. */
type SnakeCase<S extends string> = S extends `${infer H}${infer T}` ? `${H extends Lowercase<H> ? H : `_${Lowercase<H>}`}${SnakeCase<T>}` : S;

/**
 * A table's row as pg returns it, stated once: the domain type's fields under their column
 * names. A store overrides the columns pg hands back in another form (bigint as a string).
 */
export type RowOf<T> = { [K in keyof T & string as SnakeCase<K>]: T[K] };
