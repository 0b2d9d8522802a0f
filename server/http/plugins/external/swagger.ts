import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { describeOperation } from '../../openapi-operations.ts'
import { PGKEEP_VERSION } from '../../../version.ts'

/** OpenAPI generated from the route schemas: /openapi.json for tools, /docs for people. */
export default fp(async (fastify) => {
  await fastify.register(swagger, {
    // 3.1: TypeBox emits JSON Schema 2020-12 (numeric exclusiveMinimum), which 3.0 cannot say
    openapi: {
      openapi: '3.1.0',
      info: { title: 'pgkeep API', version: PGKEEP_VERSION, description: 'Self-hosted PostgreSQL backup manager', license: { name: 'MIT', identifier: 'MIT' } },
      // relative: the document describes the server that serves it, whatever name or proxy it is reached by
      servers: [{ url: '/', description: 'this pgkeep server' }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          cookie: { type: 'apiKey', in: 'cookie', name: 'pgkeep_session' },
        },
      },
      security: [{ bearer: [] }, { cookie: [] }],
    },
    transform: describeOperation,
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
  fastify.get('/openapi.json', { schema: { hide: true }, config: { rateLimit: false } }, async () => fastify.swagger())
}, { name: 'pgkeep-swagger' })
