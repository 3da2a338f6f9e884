// A virtualized table: only the rows in view (plus a few) are in the DOM, so 10,000 rows scroll
// and re-sort as fast as 50. Rows are fixed-height divs positioned in one tall spacer.

import { h } from "./util.js";

export const ROW_H = 28;
const OVERSCAN = 8;

export class VirtualTable {
  // columns: [{id, label, width, cell(rowIndex) -> Node|string, sortable}]
  // items: array of {group, label, count} or a row index (number)
  constructor({ columns, onSort, onGroupToggle }) {
    this.columns = columns;
    this.items = [];
    this.onSort = onSort;
    this.onGroupToggle = onGroupToggle;
    this.sort = null;
    this.head = h("div", { class: "vt-head", role: "row" });
    this.spacer = h("div", { class: "vt-spacer" });
    this.body = h("div", { class: "vt-body", role: "rowgroup" }, this.spacer);
    this.el = h("div", { class: "vt", role: "table" }, this.head, this.body);
    this.body.addEventListener("scroll", () => this.paint(), { passive: true });
    this.resize = new ResizeObserver(() => this.paint());
    this.resize.observe(this.body);
    this.first = -1;
    this.last = -1;
  }

  setColumns(columns) {
    this.columns = columns;
    this.renderHead();
    this.paint(true);
  }

  setItems(items) {
    this.items = items;
    this.spacer.style.height = `${items.length * ROW_H}px`;
    this.paint(true);
  }

  width() { return this.columns.reduce((s, c) => s + c.width, 0); }

  renderHead() {
    const w = this.width();
    this.head.style.width = `${w}px`;
    this.spacer.style.width = `${w}px`;
    this.head.replaceChildren(...this.columns.map((c) => {
      const mark = this.sort && this.sort.id === c.id ? (this.sort.desc ? " ▼" : " ▲") : "";
      return h("div", {
        class: `vt-th${c.sortable ? " sortable" : ""}${c.numeric ? " num" : ""}`,
        role: "columnheader",
        "data-col": c.id,
        title: c.title || c.label,
        style: { width: `${c.width}px` },
        onclick: c.sortable ? () => this.onSort(c.id) : null,
      }, c.header ? c.header() : c.label + mark);
    }));
    // the header scrolls sideways with the body
    this.body.onscroll = () => { this.head.style.transform = `translateX(${-this.body.scrollLeft}px)`; };
  }

  paint(force = false) {
    const top = this.body.scrollTop;
    const height = this.body.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(this.items.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    if (!force && first === this.first && last === this.last) return;
    this.first = first;
    this.last = last;
    const rows = [];
    const w = this.width();
    for (let i = first; i < last; i++) {
      const item = this.items[i];
      const style = { top: `${i * ROW_H}px`, width: `${w}px` };
      if (typeof item === "number") {
        rows.push(h("div", { class: "vt-row", role: "row", "data-row": item, style },
          this.columns.map((c) => h("div", { class: `vt-td${c.numeric ? " num" : ""}`, role: "cell", style: { width: `${c.width}px` } }, c.cell(item)))));
      } else {
        rows.push(h("div", { class: "vt-row vt-group", role: "row", style, "data-group": item.label, onclick: () => this.onGroupToggle(item.key) },
          h("span", { class: "caret" }, item.collapsed ? "▶" : "▼"), ` ${item.label} `, h("span", { class: "muted" }, `(${item.count})`)));
      }
    }
    this.spacer.replaceChildren(...rows);
  }

  destroy() { this.resize.disconnect(); }
}
