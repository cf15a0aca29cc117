// The registry client's public face: pull into a store, push an Image, and the pieces they use.
export { pull, pullImage, DEFAULT_PLATFORM, type PullOptions } from './pull.ts';
export { push, pushManifest, type PushOptions, type PushResult } from './push.ts';
export { RegistryClient, type ClientOptions } from './client.ts';
export { fetchManifest, selectPlatform, parsePlatformString, formatPlatform, MANIFEST_ACCEPT, type FetchedManifest } from './manifest.ts';
export { findCredentials, dockerConfigPath, type Credentials } from './credentials.ts';
export { parseChallenges, type Challenge } from './auth.ts';
