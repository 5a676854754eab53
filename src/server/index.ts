/**
 * Plaza as a library: `import { createPlaza } from 'plaza-realtime'`. Importing it starts
 * nothing; the reference is docs/server.md. This file only re-exports: the public surface is
 * what is named here, and nothing else is promised.
 *
 * ```ts
 * import { createServer } from 'node:http';
 * import { createPlaza, reject } from 'plaza-realtime';
 *
 * const server = createServer(app);
 * const plaza = createPlaza({
 *   path: '/plaza',
 *   authenticate: (request) => sessionUser(request),          // { id, name } or refuse(401, '…')
 *   onPublish: ({ data }) => (isSpam(data) ? reject('spam', 'not here') : undefined),
 * });
 * await plaza.attach(server);
 * server.listen(3000);
 * plaza.on('roomVacated', ({ room }) => archive(room));
 * ```
 */
export { createPlaza, type Plaza, type PlazaConfig, type PlazaDependencies, type PlazaState, type PublishResult, type EphemeralResult, type ServerPublishOptions, type RequestHandler } from './plaza.js';
export { createNode, type NodeParts, type NodeProblem, type NodeState, type PlazaNode } from './node/node.js';
export { backplaneFor, localBackplane, redisBackplane, type BackplaneFactory, type BackplaneParts } from './node/backplanes.js';
export type { Closing } from './node/lifecycle.js';
export type { Side } from './sessions/side.js';
export { ConfigError, DEFAULTS, WEBHOOK_EVENTS, type LogFormat, type LogLevel, type PlazaOptions, type WebhookEventType } from './config.js';
export { allow, refuse, reject, replace } from './hooks/types.js';
export type {
  Allowance, ClientInfo, Grants, HookCall, Identity, JoinContext, JoinVerdict, LeaveContext, PlazaHooks,
  PublishContext, PublishVerdict, Refusal, Rejection, Replacement,
} from './hooks/types.js';
export type { Listener, PlazaEventName, PlazaEvents } from './hooks/events.js';
export { PublishError } from './rooms/publish-check.js';
export { SIGNATURE_HEADER, signWebhook, verifyWebhook, type VerifyOptions } from './webhooks/signature.js';
export { signToken, type TokenClaims } from './access/tokens.js';
export type { LogFields, Logger } from './logger.js';
export { CloseCode, ErrorCode, SUBPROTOCOL, type AppErrorCode } from '../shared/protocol.js';
