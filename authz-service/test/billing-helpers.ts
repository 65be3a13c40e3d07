import { createLogger } from '@tollgate/common';
import type { TestStack } from '@tollgate/devstack';
import { loadBillingConfig, startBillingSidecar, type BillingSidecar } from '../../billing-sidecar/src/index.js';
import type { TestEnv } from './helpers.js';

/** billing-sidecar in this process on the env's database, silent, on free ports, stopped by the stack. */
export function stackBillingSidecar(stack: TestStack, env: TestEnv, extra: Record<string, string> = {}): Promise<BillingSidecar> {
  return stack.start(
    'billing-sidecar',
    () =>
      startBillingSidecar(
        loadBillingConfig({ DATABASE_URL: env.databaseUrl, BILLING_GRPC_PORT: '0', BILLING_HTTP_PORT: '0', BILLING_FLUSH_INTERVAL_MS: '20', ...extra }),
        createLogger({ service: 'billing-sidecar', level: 'silent' }),
      ),
    (sidecar) => sidecar.stop(),
  );
}
