package e2e

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

// SPEC v2 "Confidentiality": a room's avatar is a protected file. Downloads
// need a file token and pass chat_rooms' view rule for the token's user:
// members of a non-public room, any signed-in user for a public room, nobody
// without a token (a URL alone opens nothing).
func TestAvatarProtected(t *testing.T) {
	r := newRig(t, chatmodule.Config{})
	alice, bob, dave := r.NewUser("alice"), r.NewUser("bob"), r.NewUser("dave") // dave is in no room
	picture := chattest.PNG(64, 64)

	rooms, err := r.App.FindCollectionByNameOrId("chat_rooms")
	if err != nil {
		t.Fatal(err)
	}
	if field, _ := rooms.Fields.GetByName("avatar").(*core.FileField); field == nil || !field.Protected {
		t.Fatalf("chat_rooms.avatar is not a protected file field: %+v", field)
	}

	newRoom := func(name string, public bool) (id, file string) {
		t.Helper()
		fields := map[string]string{"type": "group", "name": name}
		if public {
			fields["is_public"] = "true"
		}
		res := r.Upload(alice, http.MethodPost, rigRooms, fields, chattest.File{Field: "avatar", Name: "avatar.png", Content: picture})
		r.expect(res, http.StatusOK, "room with an avatar")
		if res.Str("avatar") == "" {
			t.Fatalf("no avatar stored: %s", res)
		}
		return res.Str("id"), res.Str("avatar")
	}
	secret, secretFile := newRoom("Secret", false)
	r.addMember(alice, secret, bob, nil)
	public, publicFile := newRoom("Lobby", true)

	download := func(room, file, query string, auth *chattest.User) *chattest.Response {
		t.Helper()
		return r.Do(auth, http.MethodGet, "/api/files/chat_rooms/"+room+"/"+file+query, nil)
	}
	tokenOf := func(u *chattest.User) string { return r.fileToken(u) }

	for _, tc := range []struct {
		name        string
		room, file  string
		query       string
		auth        *chattest.User // Authorization header (file downloads ignore it)
		status      int
		wantPicture bool
	}{
		{"member with token", secret, secretFile, "?token=" + tokenOf(bob), nil, 200, true},
		{"creator with token", secret, secretFile, "?token=" + tokenOf(alice), nil, 200, true},
		{"member with token, thumb", secret, secretFile, "?thumb=100x100&token=" + tokenOf(bob), nil, 200, false},
		{"non-member with token", secret, secretFile, "?token=" + tokenOf(dave), nil, 404, false},
		{"non-member with token, thumb", secret, secretFile, "?thumb=100x100&token=" + tokenOf(dave), nil, 404, false},
		{"no token", secret, secretFile, "", nil, 404, false},
		{"no token, thumb", secret, secretFile, "?thumb=100x100", nil, 404, false},
		{"member's auth header without token", secret, secretFile, "", bob, 404, false},
		{"an auth token is not a file token", secret, secretFile, "?token=" + bob.Token, nil, 404, false},
		{"garbage token", secret, secretFile, "?token=nope", nil, 404, false},
		{"public room: non-member with token", public, publicFile, "?token=" + tokenOf(dave), nil, 200, true},
		{"public room: member with token", public, publicFile, "?token=" + tokenOf(alice), nil, 200, true},
		{"public room: no token", public, publicFile, "", nil, 404, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := download(tc.room, tc.file, tc.query, tc.auth)
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d: %.200s", res.Status, tc.status, res)
			}
			if tc.wantPicture && !bytes.Equal(res.Body, picture) {
				t.Fatalf("downloaded %d bytes, not the uploaded picture", len(res.Body))
			}
		})
	}

	// A member who leaves loses the avatar with the room.
	r.expect(r.Do(bob, http.MethodDelete, rigMembers+"/"+r.membership(secret, bob).Id, nil), http.StatusNoContent, "bob leaves")
	if res := download(secret, secretFile, "?token="+tokenOf(bob), nil); res.Status != http.StatusNotFound {
		t.Fatalf("former member's download = %d, want 404", res.Status)
	}
	// A room made public opens its avatar to everybody signed in.
	r.expect(r.Do(alice, http.MethodPatch, rigRooms+"/"+secret, map[string]any{"is_public": true}), http.StatusOK, "room made public")
	if res := download(secret, secretFile, "?token="+tokenOf(dave), nil); res.Status != http.StatusOK {
		t.Fatalf("non-member download of a now public room's avatar = %d, want 200", res.Status)
	}
}
