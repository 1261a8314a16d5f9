// The public JSON endpoints, and nothing else. URLs are built on
// location.origin: a page opened as http://user:pass@host/ui/ would make
// fetch refuse URLs resolved against it.

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function apiURL(path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v == null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => url.searchParams.append(k, x));
    else url.searchParams.set(k, v);
  }
  return url;
}

export async function getJSON(path, params) {
  const response = await fetch(apiURL(path, params), { headers: { accept: 'application/json' }, credentials: 'same-origin' });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) throw new APIError(response.status, body?.message || `${response.status} ${response.statusText}`);
  return body;
}

/** A path segment. */
export const seg = (s) => encodeURIComponent(s);
