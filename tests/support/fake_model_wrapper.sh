#!/bin/sh
# Installed in the real-agent test image as /usr/local/bin/claude, codex, aider, gemini and opencode: starts the fake
# model server (fake_model.py) on 127.0.0.1 inside the sandbox, points the real CLI of this name at
# it, runs the real CLI with pipe's arguments, then reports what the model was sent on stderr.
name=$(basename "$0")
port=18080
log=$(mktemp)
python3 /usr/local/lib/pipe-test/fake_model.py "$port" "$log" 2>/dev/null &
server=$!
tries=0
while [ "$tries" -lt 100 ] && ! python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; do
  tries=$((tries + 1))
  sleep 0.1
done
base="http://127.0.0.1:$port"
case "$name" in
  claude)
    export ANTHROPIC_BASE_URL="$base" ANTHROPIC_API_KEY="${ANTHROPIC_API_KEY:-sk-test}"
    set -- /opt/agents/bin/claude "$@" ;;
  codex)
    export OPENAI_API_KEY="${OPENAI_API_KEY:-sk-test}"
    set -- /opt/agents/bin/codex -c model_provider=fake \
      -c "model_providers.fake={name=\"fake\", base_url=\"$base/v1\", env_key=\"OPENAI_API_KEY\", wire_api=\"responses\"}" "$@" ;;
  gemini)
    export GOOGLE_GEMINI_BASE_URL="$base" GEMINI_API_KEY="${GEMINI_API_KEY:-sk-test}"
    # with a base URL, gemini 0.61 picks an auth type it then refuses: name the API key one
    mkdir -p "$HOME/.gemini"
    [ -f "$HOME/.gemini/settings.json" ] || echo '{"security": {"auth": {"selectedType": "gemini-api-key"}}}' > "$HOME/.gemini/settings.json"
    set -- /opt/agents/bin/gemini "$@" ;;
  opencode)
    export ANTHROPIC_API_KEY="${ANTHROPIC_API_KEY:-sk-test}"
    export OPENCODE_CONFIG_CONTENT="{\"provider\": {\"anthropic\": {\"options\": {\"baseURL\": \"$base/v1\"}}}, \"model\": \"anthropic/claude-sonnet-4-5\"}"
    set -- /opt/agents/bin/opencode "$@" ;;
  aider)
    export OPENAI_API_BASE="$base/v1" OPENAI_API_KEY="${OPENAI_API_KEY:-sk-test}" AIDER_MODEL=openai/gpt-4o
    set -- /opt/aider/bin/aider "$@" ;;
esac
"$@"
code=$?
kill "$server" 2>/dev/null
python3 /usr/local/lib/pipe-test/fake_model.py --report "$log" >&2
exit "$code"
