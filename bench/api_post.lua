-- api_post.lua - wrk script for bench/api: POST a text to $BENCH_TO ("bench api <n>", n counts
-- per wrk thread), JSON body, the Authorization header comes from wrk's -H.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local to = os.getenv("BENCH_TO") or "0"
local n = 0

request = function()
    n = n + 1
    return wrk.format(nil, nil, nil,
                      string.format('{"to":"%s","text":"bench api %d"}', to, n))
end
