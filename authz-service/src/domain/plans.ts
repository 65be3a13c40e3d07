import type { ApiKey } from './api-key.js';
import { limitScopes } from './scopes.js';

/**
 * A plan an operator defines in PLANS (docs/billing.md, "Plans"): the limits and scopes a
 * customer bought, and the Stripe price that buys it. A null limit is one the plan does not set
 * (DEFAULT_RATE_LIMIT_* then apply); null scopes do not limit the key's.
 */
export interface Plan {
  name: string;
  rateLimitPerMinute: number | null;
  rateLimitPerDay: number | null;
  monthlyQuota: number | null;
  scopes: readonly string[] | null;
  stripePrice: string | null;
  stripeLookupKey: string | null;
}

export interface EffectiveLimits {
  rateLimitPerMinute: number | null;
  rateLimitPerDay: number | null;
  monthlyQuota: number | null;
}

type KeyLimitFields = Pick<ApiKey, 'plan' | 'rateLimitPerMinute' | 'rateLimitPerDay' | 'monthlyQuota'>;

/** A Stripe price as a subscription item carries it. */
interface StripePrice {
  id?: unknown;
  lookup_key?: unknown;
}

/**
 * The configured plans, looked up in memory: the Check resolves a key's limits from its `plan`
 * name without a query, and a plan's definition changes only with the configuration.
 */
export class PlanCatalog {
  private readonly byName = new Map<string, Plan>();
  private readonly byPrice = new Map<string, Plan>();
  private readonly byLookupKey = new Map<string, Plan>();

  constructor(
    plans: readonly Plan[],
    private readonly defaults: { perMinute: number | null; perDay: number | null },
  ) {
    for (const p of plans) {
      this.byName.set(p.name, p);
      if (p.stripePrice) this.byPrice.set(p.stripePrice, p);
      if (p.stripeLookupKey) this.byLookupKey.set(p.stripeLookupKey, p);
    }
  }

  list(): Plan[] {
    return [...this.byName.values()];
  }

  get(name: string | null): Plan | undefined {
    return name === null ? undefined : this.byName.get(name);
  }

  /** The plan a Stripe price maps to: by price id, else by lookup key. */
  forPrice(price: StripePrice | null | undefined): Plan | undefined {
    if (!price) return undefined;
    const byId = typeof price.id === 'string' ? this.byPrice.get(price.id) : undefined;
    return byId ?? (typeof price.lookup_key === 'string' ? this.byLookupKey.get(price.lookup_key) : undefined);
  }

  /**
   * What a key's null limit means: its plan's, else DEFAULT_RATE_LIMIT_* (a quota has no
   * default). A plan name no longer configured counts as no plan.
   */
  fallback(planName: string | null): EffectiveLimits {
    const plan = this.get(planName);
    return {
      rateLimitPerMinute: plan?.rateLimitPerMinute ?? this.defaults.perMinute,
      rateLimitPerDay: plan?.rateLimitPerDay ?? this.defaults.perDay,
      monthlyQuota: plan?.monthlyQuota ?? null,
    };
  }

  /** The limits the Check enforces: the key's own where it has one, else its plan's, else the defaults. */
  limitsOf(key: KeyLimitFields): EffectiveLimits {
    const fallback = this.fallback(key.plan);
    return {
      rateLimitPerMinute: key.rateLimitPerMinute ?? fallback.rateLimitPerMinute,
      rateLimitPerDay: key.rateLimitPerDay ?? fallback.rateLimitPerDay,
      monthlyQuota: key.monthlyQuota ?? fallback.monthlyQuota,
    };
  }

  /** The scopes the gateway grants a key holding `held`: limited to its plan's, if the plan lists any. */
  scopesOf(held: string[], planName: string | null): string[] {
    const scopes = this.get(planName)?.scopes;
    return scopes ? limitScopes(held, scopes) : held;
  }
}
