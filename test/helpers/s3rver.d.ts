// s3rver ships no types; this is the little of it the test peer uses.
declare module 's3rver' {
  import type { Server } from 'node:http'
  import type { AddressInfo } from 'node:net'
  export default class S3rver {
    constructor (options: {
      port?: number
      address?: string
      silent?: boolean
      directory: string
      resetOnClose?: boolean
      allowMismatchedSignatures?: boolean
      configureBuckets?: Array<{ name: string }>
    })
    httpServer?: Server
    run (): Promise<AddressInfo>
    close (): Promise<void>
  }
}
