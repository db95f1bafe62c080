package testenv

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// serveRealtime is the Realtime API: a WebSocket (subprotocol "realtime"
// if the client offers it) that opens with session.created naming the
// query's model; conversation.item.create is acknowledged with
// conversation.item.added and remembered, response.create answers with
// response.created, the reply "echo from {model} at /v1/realtime: {last
// item's text}" in output_text deltas, and response.done with usage
// (7 input, 5 output tokens); binary messages are echoed; anything else
// is an error event. It refuses permessage-deflate only by not asking
// for it (the gateway offers no extension).
func (u *Upstream) serveRealtime(w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"realtime"}})
	if err != nil {
		return
	}
	defer conn.CloseNow()
	ctx := r.Context()
	model := r.URL.Query().Get("model")
	n := 0
	send := func(v map[string]any) error {
		n++
		v["event_id"] = "event_" + strings.Repeat("x", n%3) + string(rune('a'+n%26))
		b, _ := json.Marshal(v)
		return conn.Write(ctx, websocket.MessageText, b)
	}
	if send(map[string]any{"type": "session.created", "session": map[string]any{
		"type": "realtime", "object": "realtime.session", "id": "sess_1", "model": model}}) != nil {
		return
	}
	last := ""
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageBinary {
			conn.Write(ctx, websocket.MessageBinary, b)
			continue
		}
		var ev struct {
			Type string `json:"type"`
			Item struct {
				ID      string `json:"id"`
				Content []struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"item"`
		}
		if json.Unmarshal(b, &ev) != nil {
			send(map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error", "message": "not JSON"}})
			continue
		}
		switch ev.Type {
		case "session.update":
			send(map[string]any{"type": "session.updated", "session": map[string]any{"type": "realtime", "model": model}})
		case "conversation.item.create":
			if len(ev.Item.Content) > 0 {
				last = ev.Item.Content[0].Text
			}
			send(map[string]any{"type": "conversation.item.added", "item": map[string]any{
				"id": "item_1", "type": "message", "role": "user", "content": []any{map[string]any{"type": "input_text", "text": last}}}})
		case "response.create":
			resp := map[string]any{"id": "resp_1", "object": "realtime.response", "status": "in_progress"}
			send(map[string]any{"type": "response.created", "response": resp})
			reply := "echo from " + model + " at /v1/realtime: " + last
			for i, word := range strings.Fields(reply) {
				if i > 0 {
					word = " " + word
				}
				send(map[string]any{"type": "response.output_text.delta", "response_id": "resp_1", "item_id": "item_2",
					"output_index": 0, "content_index": 0, "delta": word})
			}
			send(map[string]any{"type": "response.output_text.done", "response_id": "resp_1", "item_id": "item_2",
				"output_index": 0, "content_index": 0, "text": reply})
			send(map[string]any{"type": "response.done", "response": map[string]any{
				"id": "resp_1", "object": "realtime.response", "status": "completed",
				"output": []any{map[string]any{"id": "item_2", "type": "message", "role": "assistant",
					"content": []any{map[string]any{"type": "output_text", "text": reply}}}},
				"usage": map[string]any{"total_tokens": 12, "input_tokens": 7, "output_tokens": 5,
					"input_token_details":  map[string]any{"cached_tokens": 0, "text_tokens": 7, "audio_tokens": 0},
					"output_token_details": map[string]any{"text_tokens": 5, "audio_tokens": 0}}}})
		default:
			send(map[string]any{"type": "error", "error": map[string]any{"type": "invalid_request_error",
				"message": "unknown event type " + ev.Type}})
		}
	}
}
