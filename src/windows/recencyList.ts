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
 * fewer to reach per rule and event, which over thousands of groups is a cache miss (bench/windows.bench.ts).
 *
 * The list is circular (the head's prev is the tail), so touching the least recent group, which is what
 * devices sending in turn do all the time, only moves `head` on: no other group's links are written.
 * A linear list wrote the next group's `prev` there, a cache miss per rule and event over many groups
 * (6 % of the 100-rule engine benchmark's CPU). A group is in a list exactly when its prev link is set.
 *
 * Each operator subscription owns its own list. Groups given to a new list (restored state, or a hot
 * reload handing over the previous instance's groups, whose links are stale) enter it through
 * {@link append}; `touch` is for groups of this list and for new ones (links null or absent).
 */
export class RecencyList<G extends object> {
  /** The least recently touched group; its prev is the most recent one. */
  private head: Linked<G> | null = null;

  /** Moves `g` to the most recent end; a new group (never linked) joins the list. */
  touch(key: string, g: G): void {
    const n = g as Linked<G>;
    const head = this.head;
    // The oldest becomes the newest: in a circular list that is the head moving one step.
    if (n === head) {
      this.head = n[LINK_NEXT]!;
      return;
    }
    if ((n[LINK_PREV] ?? null) !== null) {
      if (n[LINK_NEXT] === head) return; // the newest already
      this.unlink(n);
    } else n[LINK_KEY] = key;
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
    if ((n[LINK_PREV] ?? null) === null) return;
    if (n[LINK_NEXT] === n) this.head = null;
    else {
      if (n === this.head) this.head = n[LINK_NEXT]!;
      this.unlink(n);
    }
    n[LINK_PREV] = null;
    n[LINK_NEXT] = null;
  }

  /** The least recently touched group, or null. */
  oldest(): { readonly key: string; readonly g: G } | null {
    const h = this.head;
    return h === null ? null : { key: h[LINK_KEY]!, g: h };
  }

  /** The group touched just before `g` (its older neighbour), or null when `g` is the least recent. */
  before(g: G): G | null {
    const n = g as Linked<G>;
    return n === this.head || (n[LINK_PREV] ?? null) === null ? null : (n[LINK_PREV] as G);
  }

  /** The group touched just after `g`, or null when `g` is the most recent. */
  after(g: G): { readonly key: string; readonly g: G } | null {
    const n = (g as Linked<G>)[LINK_NEXT] ?? null;
    return n === null || n === this.head ? null : { key: n[LINK_KEY]!, g: n };
  }

  /** Least recent first, the groups in the list when the iteration starts. Removing the entry just visited while iterating is safe. */
  *entries(): IterableIterator<{ readonly key: string; readonly g: G }> {
    const head = this.head;
    if (head === null) return;
    const last = head[LINK_PREV]!;
    let n = head;
    for (;;) {
      const next = n[LINK_NEXT]!;
      yield { key: n[LINK_KEY]!, g: n };
      if (n === last) return;
      n = next;
    }
  }

  /** Inserts `n` (not in the list) at the most recent end, just before the head. */
  private link(n: Linked<G>): void {
    const head = this.head;
    if (head === null) {
      n[LINK_PREV] = n;
      n[LINK_NEXT] = n;
      this.head = n;
      return;
    }
    const tail = head[LINK_PREV]!;
    n[LINK_PREV] = tail;
    n[LINK_NEXT] = head;
    tail[LINK_NEXT] = n;
    head[LINK_PREV] = n;
  }

  /** Takes `n` out of the ring (not the head, not alone); its own links are left for the caller. */
  private unlink(n: Linked<G>): void {
    const prev = n[LINK_PREV]!;
    const next = n[LINK_NEXT]!;
    prev[LINK_NEXT] = next;
    next[LINK_PREV] = prev;
  }
}
