/**
 * Compile-time checks of the generated types: `tsc` fails when the
 * document stops describing what clients rely on. Nothing here runs.
 */
import type { components, operations, paths } from "./schema.js";

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Expect<T extends true> = T;
type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;
type ProblemJson<R> = R extends { content: { "application/problem+json": infer B } } ? B : never;

// Registering a device answers with the device and its secret (shown once),
// under its own operationId, and takes only a name.
type RegisterDevice = paths["/api/v1/devices"]["post"];
type RegisteredDevice = Json<RegisterDevice["responses"][201]>;
export type DeviceRegistrationHasSecret = Expect<Equals<RegisteredDevice["secret"], string>>;
export type DeviceRegistrationHasTheDevice = Expect<Equals<RegisteredDevice["device"], components["schemas"]["DeviceResponse"]>>;
export type DeviceRegistrationIsItsOwnOperation = Expect<Equals<RegisterDevice, operations["registerDevice"]>>;
export type DeviceRegistrationTakesAName = Expect<Equals<keyof Json<RegisterDevice["requestBody"]>, "name">>;
// Rotating the secret returns the new one too.
export type RotationHasSecret = Expect<
  Equals<Json<paths["/api/v1/devices/{id}/rotate-secret"]["post"]["responses"][200]>["secret"], string>
>;
// A user registration is not a device registration.
export type UserRegistrationIsDistinct = Expect<Equals<paths["/api/v1/auth/register"]["post"], operations["registerUser"]>>;
export type UserHasNoSecret = Expect<
  Equals<"secret" extends keyof Json<operations["registerUser"]["responses"][201]> ? true : false, false>
>;

// Query parameters: numbers and enums, not strings with patterns.
type ListDevicesQuery = NonNullable<paths["/api/v1/devices"]["get"]["parameters"]["query"]>;
export type LimitIsANumber = Expect<Equals<ListDevicesQuery["limit"], number | undefined>>;
export type StatusIsAnEnum = Expect<Equals<ListDevicesQuery["status"], "active" | "revoked" | undefined>>;
type PollQuery = NonNullable<paths["/api/v1/device/poll"]["get"]["parameters"]["query"]>;
export type WaitIsANumber = Expect<Equals<PollQuery["wait"], number | undefined>>;
export type SideIsAnEnum = Expect<Equals<components["schemas"]["PublishRequest"]["side"], "buy" | "sell">>;

// Every error of an owner operation is a problem.
export type PublishErrorsAreProblems = Expect<
  Equals<ProblemJson<paths["/api/v1/signals"]["post"]["responses"]["4XX"]>, components["schemas"]["Problem"]>
>;

// The compiler refuses what the server would refuse.
export const unknownSide: components["schemas"]["PublishRequest"] = {
  instrument: "EURUSD",
  // @ts-expect-error `side` is buy or sell
  side: "hold",
  order_type: "market",
  volume: 0.1,
};
