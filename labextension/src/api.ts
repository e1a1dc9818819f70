import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

let registry: string | null = null;

/** The registry the sidebar shows (one of GET registries); every call names it. */
export function setRegistry(id: string | null): void {
  registry = id;
}

/** ``path`` of the REST API with the registry to use (the sidebar's, or ``id``). */
export function apiPath(path: string, id: string | null = registry): string {
  return id ? `${path}${path.includes('?') ? '&' : '?'}registry=${encodeURIComponent(id)}` : path;
}

/** Call the mlops-nb REST API; errors carry the server's one-line message. */
export async function api<T = any>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'mlops-nb', 'api', apiPath(path));
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  }
  return data as T;
}

export function post<T = any>(path: string, body: object): Promise<T> {
  return api<T>(path, { method: 'POST', body: JSON.stringify(body) });
}
