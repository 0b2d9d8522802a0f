/** pgkeep's version (package.json's): in the API document and each instance's row in the shared catalog. */
export const PGKEEP_VERSION = '0.1.0'
