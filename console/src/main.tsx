import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { currentSession, type Session, signIn, signOut } from './api.js';
import { CreateKey, KeyDetail, KeysList } from './keys.js';
import { loadPlans, Plans } from './plans.js';
import { go, href, useRoute } from './router.js';
import { AuditLog, Billing, OverviewScreen, ProviderKeys, ServiceTokens, UserDetail, Users } from './screens.js';
import './styles.css';
import { ErrorNote, Field, useLoad } from './ui.js';
import { CreateWebhook, WebhookDeliveries, WebhookDetail, WebhookEndpoints } from './webhooks.js';

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>();
  return (
    <main class="signin">
      <form
        class="card"
        aria-labelledby="signin-h"
        onSubmit={async (e) => {
          e.preventDefault();
          setError(undefined);
          try {
            const session = await signIn(token);
            setToken('');
            onSignedIn(session);
          } catch (err) {
            setError(err);
          }
        }}
      >
        <h1 id="signin-h">Tollgate Console</h1>
        <p>Sign in with the admin token, or with your own API key to manage your keys.</p>
        <Field label="Admin token or API key">
          <input type="password" autocomplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} />
        </Field>
        <ErrorNote error={error} />
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

const OPERATOR_NAV = [
  ['overview', 'Overview'],
  ['keys', 'Keys'],
  ['users', 'Users'],
  ['tokens', 'Service tokens'],
  ['provider-keys', 'Provider keys'],
  ['audit', 'Audit log'],
  ['billing', 'Billing'],
  ['plans', 'Plans'],
  ['webhooks', 'Webhooks'],
  ['deliveries', 'Webhook deliveries'],
] as const;
const OWNER_NAV = [
  ['keys', 'My keys'],
  ['usage', 'My usage'],
  ['provider-keys', 'My provider keys'],
] as const;

function Screen({ route, session }: { route: string[]; session: Session }) {
  const [section = session.kind === 'owner' ? 'keys' : 'overview', arg] = route;
  const owner = session.kind === 'owner';
  if (section === 'keys' && arg === 'new') return <CreateKey session={session} />;
  if (section === 'keys' && arg) return <KeyDetail id={arg} session={session} />;
  if (section === 'keys') return <KeysList session={session} />;
  if (section === 'usage' || (section === 'users' && owner)) return <UserDetail userId={session.user_id ?? ''} session={session} />;
  if (section === 'provider-keys') return <ProviderKeys userId={owner ? (session.user_id ?? '') : (arg ?? '')} session={session} />;
  if (owner) return <p role="alert">Not available with an owner key.</p>;
  if (section === 'overview') return <OverviewScreen />;
  if (section === 'users' && arg) return <UserDetail userId={arg} session={session} />;
  if (section === 'users') return <Users />;
  if (section === 'tokens') return <ServiceTokens />;
  if (section === 'audit') return <AuditLog />;
  if (section === 'billing') return <Billing />;
  if (section === 'plans') return <Plans />;
  if (section === 'webhooks' && arg === 'new') return <CreateWebhook />;
  if (section === 'webhooks' && arg) return <WebhookDetail id={arg} />;
  if (section === 'webhooks') return <WebhookEndpoints />;
  if (section === 'deliveries') return <WebhookDeliveries />;
  return <p role="alert">No such page.</p>;
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const route = useRoute();
  // The Plans screen is listed only when PLANS has any.
  const plans = useLoad(() => (session?.kind === 'admin' ? loadPlans() : Promise.resolve([])), [session?.kind]);
  useEffect(() => {
    currentSession().then(setSession, () => setSession(null));
  }, []);
  if (session === undefined) return <p aria-busy="true">Loading…</p>;
  if (session === null) return <SignIn onSignedIn={setSession} />;
  const nav = session.kind === 'owner' ? OWNER_NAV : OPERATOR_NAV.filter(([path]) => path !== 'plans' || plans.data?.length);
  return (
    <div class="shell">
      <header class="top">
        <a class="brand" href={href()}>
          Tollgate Console
        </a>
        <span class="who">{session.kind === 'owner' ? `Owner portal · ${session.user_id ?? ''}` : 'Operator'}</span>
        <button
          type="button"
          class="secondary"
          onClick={async () => {
            await signOut();
            setSession(null);
            go();
          }}
        >
          Sign out
        </button>
      </header>
      <nav aria-label="Main">
        <ul>
          {nav.map(([path, label]) => (
            <li key={path}>
              <a href={href(path)} aria-current={route[0] === path ? 'page' : undefined}>
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main>
        <Screen route={route} session={session} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
