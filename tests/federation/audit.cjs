// Runs graphql-http's server audit (the GraphQL over HTTP spec's MUSTs, SHOULDs and
// MAYs) against HUB_URL and prints one JSON line: the counts, and every audit that did
// not pass with its reason. Driven by tests/api/clients.rs.
const { serverAudits } = require('graphql-http');

async function main() {
  const url = process.env.HUB_URL;
  const results = [];
  for (const audit of serverAudits({ url, fetchFn: fetch })) {
    const result = await audit.fn();
    results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason });
  }
  const count = (prefix, status) =>
    results.filter((r) => r.name.startsWith(prefix) && r.status === status).length;
  const summary = {
    total: results.length,
    ok: results.filter((r) => r.status === 'ok').length,
    mustFailures: count('MUST', 'error'),
    shouldWarnings: count('SHOULD', 'warn'),
    mayNotes: results.filter((r) => r.name.startsWith('MAY') && r.status !== 'ok').length,
    notOk: results.filter((r) => r.status !== 'ok'),
  };
  console.log(JSON.stringify(summary));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
