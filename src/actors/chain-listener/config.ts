/**
 * Configuration of one chain followed by a ChainListener: the schema lives with the node's other
 * config sections (src/config/chain.ts, where every field and default is described) and is re-exported
 * here for the listener's modules and tests.
 */
export {
  chainConfigSchema,
  providerConfigSchema,
  reconnectSchema,
  type ChainConfig,
  type ChainConfigInput,
  type ProviderConfig,
  type ReconnectConfig,
} from '../../config/chain.ts';
