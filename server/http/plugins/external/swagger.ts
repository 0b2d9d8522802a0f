import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'

/** OpenAPI generated from the route schemas: /openapi.json for tools, /docs for people. */
export default fp(async (fastify) => {
  await fastify.register(swagger, {
    openapi: {
      info: { title: 'pgkeep API', version: '0.1.0', description: 'Self-hosted PostgreSQL backup manager' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          cookie: { type: 'apiKey', in: 'cookie', name: 'pgkeep_session' },
        },
      },
      security: [{ bearer: [] }, { cookie: [] }],
    },
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
  fastify.get('/openapi.json', { schema: { hide: true }, config: { rateLimit: false } }, async () => fastify.swagger())
}, { name: 'pgkeep-swagger' })
