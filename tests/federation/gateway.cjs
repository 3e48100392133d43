'use strict';
// The hub behind a real Apollo gateway, next to a partner's subgraph.
//
// Driven by tests/api/federation.rs, which starts the hub and passes in:
//   HUB_URL            the hub's /graphql
//   FEDERATION_INPUT   JSON: { schools: [urn, …], laCode, tokens: { name: token, … } }
//
// 1. Fetches the hub's subgraph SDL from its `_service { sdl }`.
// 2. Starts a trust's curriculum subgraph (@apollo/server + @apollo/subgraph) on a
//    random port; it extends the hub's `School` (key `urn`) with `curriculumLead` and
//    has a root field of its own listing schools by URN.
// 3. Composes both with @apollo/composition.
// 4. Runs @apollo/gateway on the composed supergraph, forwarding each client's
//    `Authorization` header to the subgraphs, and sends it queries that join the two
//    in both directions, as each caller in `tokens` and anonymously.
//
// Prints one JSON object on stdout: the composition's errors and every response, for
// the Rust test to judge. Exits non-zero only when something could not run at all.

const { parse } = require('graphql');
const { composeServices } = require('@apollo/composition');
const { ApolloGateway, RemoteGraphQLDataSource } = require('@apollo/gateway');
const { ApolloServer } = require('@apollo/server');
const { startStandaloneServer } = require('@apollo/server/standalone');
const { buildSubgraphSchema } = require('@apollo/subgraph');

// The whole run is bounded: a hung server must fail the test, not stall it.
const WATCHDOG_MS = 120_000;
setTimeout(() => {
  console.error('gateway.cjs: timed out');
  process.exit(3);
}, WATCHDOG_MS).unref();

const quiet = {
  debug() {},
  info() {},
  warn: (...args) => console.error(...args),
  error: (...args) => console.error(...args),
};

const CURRICULUM_TYPE_DEFS = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.5", import: ["@key"])

  "A school, by the URN the hub keys it with; the hub resolves everything else."
  type School @key(fields: "urn") {
    urn: Int!
    "The trust's curriculum lead at this school."
    curriculumLead: String
  }

  "Schools working on one curriculum area together."
  type CurriculumPartnership {
    name: String!
    schools: [School!]!
  }

  type Query {
    curriculumPartnerships: [CurriculumPartnership!]!
  }
`);

/** The partner's own data: a lead for each school it was given. */
function curriculumLead(urn) {
  return `Lead at ${urn}`;
}

async function post(url, body, authorization) {
  const headers = { 'content-type': 'application/json' };
  if (authorization) headers.authorization = authorization;
  const response = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: text };
  }
}

/** Forwards the client's `Authorization` header, as a router in front of the hub must. */
class ForwardAuthorization extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    if (context.authorization) {
      request.http.headers.set('authorization', context.authorization);
    }
  }
}

const HUB_FIRST = `
  query HubFirst($la: String!) {
    schools(filter: { laCode: $la }, first: 3) {
      edges { node { urn name curriculumLead } }
    }
  }`;

const PARTNER_FIRST = `
  query PartnerFirst {
    curriculumPartnerships {
      name
      schools {
        urn
        name
        curriculumLead
        localAuthority { code }
        observations(filter: { indicatorCodes: ["attendance_rate"], pupilGroups: [ALL] }) {
          period
          value
        }
      }
    }
  }`;

async function main() {
  const hubUrl = process.env.HUB_URL;
  const input = JSON.parse(process.env.FEDERATION_INPUT || '{}');
  if (!hubUrl || !Array.isArray(input.schools) || !input.tokens) {
    throw new Error('set HUB_URL and FEDERATION_INPUT');
  }

  const service = await post(hubUrl, { query: '{ _service { sdl } }' });
  const hubSdl = service.body?.data?._service?.sdl;
  if (typeof hubSdl !== 'string') {
    throw new Error(`the hub gave no SDL: ${JSON.stringify(service)}`);
  }

  const curriculum = new ApolloServer({
    schema: buildSubgraphSchema({
      typeDefs: CURRICULUM_TYPE_DEFS,
      resolvers: {
        Query: {
          curriculumPartnerships: () => [
            { name: 'Reading for pleasure', schools: input.schools.map((urn) => ({ urn })) },
          ],
        },
        School: {
          __resolveReference: ({ urn }) => ({ urn }),
          curriculumLead: ({ urn }) => curriculumLead(urn),
        },
      },
    }),
    logger: quiet,
  });
  const { url: curriculumUrl } = await startStandaloneServer(curriculum, {
    listen: { host: '127.0.0.1', port: 0 },
  });

  const result = { composition: null, responses: {} };
  let gatewayServer = null;
  try {
    const composition = composeServices([
      { name: 'hub', typeDefs: parse(hubSdl), url: hubUrl },
      { name: 'curriculum', typeDefs: CURRICULUM_TYPE_DEFS, url: curriculumUrl },
    ]);
    result.composition = {
      errors: (composition.errors || []).map((e) => e.message),
      hints: (composition.hints || []).length,
    };
    if (composition.errors && composition.errors.length > 0) {
      return result;
    }

    const gateway = new ApolloGateway({
      supergraphSdl: composition.supergraphSdl,
      buildService: ({ url }) => new ForwardAuthorization({ url }),
      logger: quiet,
    });
    gatewayServer = new ApolloServer({
      gateway,
      logger: quiet,
      includeStacktraceInErrorResponses: false,
    });
    const { url: gatewayUrl } = await startStandaloneServer(gatewayServer, {
      listen: { host: '127.0.0.1', port: 0 },
      context: async ({ req }) => ({ authorization: req.headers.authorization }),
    });

    const callers = { ...input.tokens, anonymous: null };
    for (const [caller, token] of Object.entries(callers)) {
      const authorization = token ? `Bearer ${token}` : null;
      result.responses[caller] = {
        hubFirst: await post(
          gatewayUrl,
          { query: HUB_FIRST, variables: { la: input.laCode } },
          authorization,
        ),
        partnerFirst: await post(gatewayUrl, { query: PARTNER_FIRST }, authorization),
      };
    }
    return result;
  } finally {
    if (gatewayServer) await gatewayServer.stop();
    await curriculum.stop();
  }
}

main().then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    process.exit(0);
  },
  (error) => {
    console.error(error && error.stack ? error.stack : error);
    process.exit(1);
  },
);
