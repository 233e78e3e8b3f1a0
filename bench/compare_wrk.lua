-- wrk script of `make bench-compare` (bench/run_compare_bench.sh): one route of one side per run.
-- Environment: SIDE (original|ours), ROUTE (a label without spaces), METHOD (GET), BODY (JSON, optional),
-- AUTH (an Authorization header value, optional), EXPECT (a string the answer's body must contain; a
-- leading "^" means the body must start with the rest; empty: status 200 alone).
-- An answer counts as ok only with status 200 and EXPECT: the original answers most of its failures
-- with HTTP 200 and "success":false, so the status alone would count an error storm as throughput.
local side = os.getenv("SIDE") or "?"
local route = os.getenv("ROUTE") or "?"
local expect = os.getenv("EXPECT") or ""
local prefix = false
if string.sub(expect, 1, 1) == "^" then
  prefix = true
  expect = string.sub(expect, 2)
end

wrk.method = os.getenv("METHOD") or "GET"
local body = os.getenv("BODY") or ""
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local auth = os.getenv("AUTH") or ""
if auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  bad = 0
  first_bad = ""
end

function response(status, headers, resp_body)
  local good = status == 200
  if good and expect ~= "" then
    if prefix then
      good = string.sub(resp_body, 1, #expect) == expect
    else
      good = string.find(resp_body, expect, 1, true) ~= nil
    end
  end
  if good then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then
      first_bad = status .. " " .. string.sub(string.gsub(resp_body or "", "%s+", " "), 1, 160)
    end
  end
end

function done(summary, latency, requests)
  local tok, tbad, sample = 0, 0, ""
  for _, t in ipairs(threads) do
    tok = tok + t:get("ok")
    tbad = tbad + t:get("bad")
    if sample == "" then sample = t:get("first_bad") or "" end
  end
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "RESULT side=%s route=%s requests=%d ok=%d bad=%d errors=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f\n",
    side, route, summary.requests, tok, tbad + errors, errors, tok / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
  if sample ~= "" then
    io.write("BADSAMPLE side=" .. side .. " route=" .. route .. " " .. sample .. "\n")
  end
end
