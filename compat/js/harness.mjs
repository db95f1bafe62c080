// Shared by the compatibility scripts: runs named steps in order and prints
// one JSON object on stdout, {"steps":{name:{ok,value}|{ok:false,error}}},
// for cmd/gatehouse/internal/compattest to assert on. A failing step does
// not stop the ones after it (each reports on its own); a step whose value
// later steps need returns it and the script checks for undefined.
//
// Nothing here configures a client: the scripts build the official clients
// from environment variables and endpoint URLs, as an application does.

// describe keeps the fields of an SDK error the Go side asserts on:
// RestError (statusCode, code), AuthenticationError (statusCode,
// errorResponse.error), AggregateAuthenticationError (errors), MSAL errors
// (errorCode) and openai's APIError (status, code).
export function describe(err) {
  if (err === null || typeof err !== "object") return { message: String(err) };
  const out = { name: err.name, message: String(err.message ?? "").slice(0, 2000) };
  if (err.statusCode !== undefined) out.statusCode = err.statusCode;
  if (err.status !== undefined) out.status = err.status;
  if (err.code !== undefined) out.code = err.code;
  if (err.errorCode !== undefined) out.errorCode = err.errorCode;
  if (err.errorResponse?.error !== undefined) out.oauthError = err.errorResponse.error;
  if (Array.isArray(err.errors)) out.errors = err.errors.map(describe);
  if (err.cause !== undefined && err.cause !== err) out.cause = describe(err.cause);
  return out;
}

export async function run(steps) {
  const results = {};
  for (const [name, fn] of steps) {
    try {
      const value = await fn(results);
      results[name] = { ok: true, value: value ?? null };
    } catch (err) {
      results[name] = { ok: false, error: describe(err) };
    }
  }
  process.stdout.write(JSON.stringify({ steps: results }) + "\n");
}

// expectError runs fn, which must fail, and returns the error's description
// (a resolved promise is a step failure).
export async function expectError(fn) {
  let value;
  try {
    value = await fn();
  } catch (err) {
    return describe(err);
  }
  throw new Error("expected an error, got " + JSON.stringify(value)?.slice(0, 300));
}

export function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}
