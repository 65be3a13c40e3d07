/**
 * Asks Envoy to reopen its access logs (`POST /reopen_logs` on its admin interface, or on a
 * listener that forwards only that path to it, as Compose does: docs/deployment.md). Envoy
 * closes the renamed file and creates a new one at the configured path; what it buffered but
 * had not yet flushed goes to the new file.
 */
export async function reopenEnvoyLogs(adminUrl: string, timeoutMs = 2_000): Promise<void> {
  const res = await fetch(`${adminUrl.replace(/\/+$/, '')}/reopen_logs`, { method: 'POST', signal: AbortSignal.timeout(timeoutMs) });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`POST /reopen_logs answered ${res.status}`);
}
