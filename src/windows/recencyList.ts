/**
 * The list links kept on each group object. Symbol keys, so `JSON.stringify` of the state never sees
 * them. A group created by this code names them in its literal (`...` `[LINK_PREV]: null` etc.), which
 * puts them inside the object; a group restored from JSON gets them when it joins a list.
 */
export const LINK_PREV: unique symbol = Symbol('eddy.recency.prev');
export const LINK_NEXT: unique symbol = Symbol('eddy.recency.next');
export const LINK_KEY: unique symbol = Symbol('eddy.recency.key');

/** The fields a {@link RecencyList} keeps on its groups. */
export interface RecencyLinks {
  [LINK_PREV]?: object | null;
  [LINK_NEXT]?: object | null;
  [LINK_KEY]?: string;
}

type Linked<G extends object> = G & { [LINK_PREV]?: Linked<G> | null; [LINK_NEXT]?: Linked<G> | null; [LINK_KEY]?: string };

/**
 * Groups in order of their last arrival, least recent first: an intrusive doubly linked list whose
 * links are fields of the group objects themselves. A touch is a few pointer writes; a delete+set on
 * the state Map per event instead measured ~100 ns and GC churn (V8 rehashes an ordered hash table
 * full of deleted entries). Links on the group rather than on a node object hanging off it: one object
 * fewer to reach per rule and event, which over thousands of groups is a cache miss (issue 6).
 *
 * Each operator subscription owns its own list. Groups given to a new list (restored state, or a hot
 * reload handing over the previous instance's groups, whose links are stale) enter it through
 * {@link append}; `touch` is for groups of this list and for new ones (links null or absent).
 */
export class RecencyList<G extends object> {
  private head: Linked<G> | null = null;
  private tail: Linked<G> | null = null;

  /** Moves `g` to the most recent end; a new group (never linked) joins the list. */
  touch(key: string, g: G): void {
    const n = g as Linked<G>;
    if (n === this.tail) return;
    if ((n[LINK_PREV] ?? null) !== null || n === this.head) this.unlink(n);
    else n[LINK_KEY] = key;
    this.link(n);
  }

  /** Adds `g` at the most recent end, ignoring links it may carry from another list. */
  append(key: string, g: G): void {
    const n = g as Linked<G>;
    n[LINK_KEY] = key;
    this.link(n);
  }

  remove(g: G): void {
    const n = g as Linked<G>;
    if ((n[LINK_PREV] ?? null) === null && n !== this.head) return;
    this.unlink(n);
  }

  /** The least recently touched group, or null. */
  oldest(): { readonly key: string; readonly g: G } | null {
    const h = this.head;
    return h === null ? null : { key: h[LINK_KEY]!, g: h };
  }

  /** Least recent first. Removing the entry just visited while iterating is safe. */
  *entries(): IterableIterator<{ readonly key: string; readonly g: G }> {
    let n = this.head;
    while (n !== null) {
      const next = n[LINK_NEXT] ?? null;
      yield { key: n[LINK_KEY]!, g: n };
      n = next;
    }
  }

  private link(n: Linked<G>): void {
    n[LINK_PREV] = this.tail;
    n[LINK_NEXT] = null;
    if (this.tail === null) this.head = n;
    else this.tail[LINK_NEXT] = n;
    this.tail = n;
  }

  private unlink(n: Linked<G>): void {
    const prev = n[LINK_PREV] ?? null;
    const next = n[LINK_NEXT] ?? null;
    if (prev === null) this.head = next;
    else prev[LINK_NEXT] = next;
    if (next === null) this.tail = prev;
    else next[LINK_PREV] = prev;
    n[LINK_PREV] = null;
    n[LINK_NEXT] = null;
  }
}
