/** Small DOM helpers: the panel is plain elements, no framework. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: { [key: string]: string } = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') {
      node.className = value;
    } else {
      node.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
  }
  return node;
}

export function fmt(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'number') {
    if (Number.isInteger(value)) {
      return String(value);
    }
    return Number(value.toPrecision(6)).toString();
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value);
}

export function when(seconds: number | null | undefined): string {
  if (!seconds) {
    return '';
  }
  return new Date(seconds * 1000).toLocaleString();
}

export function status(text: string): HTMLElement {
  return el('span', { class: `mlops-status mlops-status-${text}` }, text);
}

export function message(text: string, isError = false): HTMLElement {
  return el('div', { class: isError ? 'mlops-error' : 'mlops-note' }, text);
}

/** A drop-down of names showing `chosen`; `onPick` gets the name picked. */
export function picker(names: string[], chosen: string, onPick: (name: string) => void): HTMLSelectElement {
  const select = el('select', { class: 'mlops-select' }, ...names.map(n => el('option', { value: n }, n)));
  select.value = chosen;
  select.onchange = () => onPick(select.value);
  return select;
}
