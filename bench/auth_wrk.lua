-- wrk script of the auth benchmark. MODE=validate: POST validate-api-key with BENCH_KEY; else GET.
-- Counts valid verdicts per thread and prints machine-readable figures in done().
local mode = os.getenv("MODE") or "trivial"
if mode == "validate" then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"api_key":"' .. os.getenv("BENCH_KEY") .. '"}'
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok = 0
  bad = 0
end

function response(status, headers, body)
  if status == 200 and (mode ~= "validate" or string.find(body, '"success":true', 1, true)) then
    ok = ok + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local tok, tbad = 0, 0
  for _, t in ipairs(threads) do
    tok = tok + t:get("ok")
    tbad = tbad + t:get("bad")
  end
  local seconds = summary.duration / 1e6
  io.write(string.format("RESULT mode=%s requests=%d ok=%d bad=%d errors=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f\n",
    mode, summary.requests, tok, tbad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
