package e2e

// Backups: PocketBase's own backups hold a chat, messages, attachments and
// files. A backup made through the API is (a) restored in place through the
// API (PocketBase replaces pb_data and restarts the process), and (b)
// unzipped into a fresh data dir on "another machine" and served from
// there; both times the messages written before the backup are back and
// those written after it are not.

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pbchat/pbchat/chatmodule"
	"github.com/pbchat/pbchat/internal/chattest"
)

func TestBackupRestore(t *testing.T) {
	bin, _, server, c := startDemoPBChat(t)
	super := c.superuserToken(t)
	alice := c.must(t, "", http.MethodPost, "/api/collections/users/auth-with-password",
		map[string]any{"identity": "alice@example.com", "password": chatmodule.DemoPassword}, http.StatusOK).Str("token")
	rooms := c.listAll(t, super, "chat_rooms", "name = 'Weekend trip'")
	if len(rooms) != 1 {
		t.Fatalf("demo room: %v", rooms)
	}
	room := rooms[0]["id"].(string)

	// Before the backup: text messages and one with a picture.
	picture := chattest.PNG(4, 4)
	up, err := c.upload(context.Background(), alice, "/api/collections/chat_media/records", "file", "holiday.png", picture)
	if err != nil || up.Status != http.StatusOK {
		t.Fatalf("upload: %v %v", up, err)
	}
	mediaID, mediaFile, mediaCollection := up.Str("id"), up.Str("file"), up.Str("collectionId")
	var before []string
	for _, text := range []string{"backed up one", "backed up two"} {
		before = append(before, c.must(t, alice, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": room, "text": text}, http.StatusOK).Str("id"))
	}
	withPicture := c.must(t, alice, http.MethodPost, "/api/collections/chat_messages/records",
		map[string]any{"room": room, "text": "backed up with a picture", "media": []string{mediaID}}, http.StatusOK).Str("id")
	before = append(before, withPicture)
	demoMessages := len(c.listAll(t, super, "chat_messages", ""))

	const backup = "pbchat_test.zip"
	c.must(t, super, http.MethodPost, "/api/backups", map[string]any{"name": backup}, http.StatusNoContent)

	// After the backup: a new message, and one of the backed-up ones deleted.
	after := c.must(t, alice, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": room, "text": "after the backup"}, http.StatusOK).Str("id")
	c.must(t, alice, http.MethodDelete, "/api/collections/chat_messages/records/"+before[0], nil, http.StatusNoContent)

	// The backup file, as an operator downloads it (superuser file token).
	fileToken := c.must(t, super, http.MethodPost, "/api/files/token", nil, http.StatusOK).Str("token")
	zipped := c.must(t, "", http.MethodGet, "/api/backups/"+backup+"?token="+url.QueryEscape(fileToken), nil, http.StatusOK).Body

	check := func(t *testing.T, c *pbClient) {
		t.Helper()
		super := c.superuserToken(t)
		messages := c.listAll(t, super, "chat_messages", "")
		ids := map[string]map[string]any{}
		for _, m := range messages {
			ids[m["id"].(string)] = m
		}
		for _, id := range before {
			if ids[id] == nil {
				t.Errorf("message %s written before the backup is missing", id)
			}
		}
		if ids[after] != nil {
			t.Errorf("message %s written after the backup came back", after)
		}
		if len(messages) != demoMessages {
			t.Errorf("%d messages, want the %d of the backup", len(messages), demoMessages)
		}
		links := c.listAll(t, super, "chat_message_media", "message = '"+withPicture+"'")
		if len(links) != 1 || links[0]["media"] != mediaID {
			t.Fatalf("attachment of the picture message: %v", links)
		}
		// The file itself, downloaded by a member with a file token.
		alice := c.must(t, "", http.MethodPost, "/api/collections/users/auth-with-password",
			map[string]any{"identity": "alice@example.com", "password": chatmodule.DemoPassword}, http.StatusOK).Str("token")
		token := c.must(t, alice, http.MethodPost, "/api/files/token", nil, http.StatusOK).Str("token")
		got := c.must(t, "", http.MethodGet, "/api/files/"+mediaCollection+"/"+mediaID+"/"+mediaFile+"?token="+url.QueryEscape(token), nil, http.StatusOK)
		if !bytes.Equal(got.Body, picture) {
			t.Errorf("restored picture differs (%d bytes, want %d)", len(got.Body), len(picture))
		}
		// The chat works on the restored data.
		c.must(t, alice, http.MethodPost, "/api/collections/chat_messages/records", map[string]any{"room": room, "text": "after the restore"}, http.StatusOK)
	}

	t.Run("unzipped into a new data dir", func(t *testing.T) {
		fresh := filepath.Join(t.TempDir(), "pb_data")
		unzip(t, zipped, fresh)
		other := startPBChat(t, bin, fresh)
		check(t, newPBClient(other.URL))
		other.stop()
	})

	t.Run("restored in place through the API", func(t *testing.T) {
		c.must(t, super, http.MethodPost, "/api/backups/"+backup+"/restore", nil, http.StatusNoContent)
		// PocketBase swaps pb_data and re-executes the process (same pid,
		// same port). Wait for that state: the post-backup message gone.
		deadline := time.Now().Add(60 * time.Second)
		for {
			res, err := c.do(context.Background(), super, http.MethodGet, "/api/collections/chat_messages/records/"+after, nil)
			if err == nil && res.Status == http.StatusNotFound {
				break
			}
			select {
			case <-server.exited:
				t.Fatalf("the server exited during the restore; log:\n%s", server.log())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("restore not done after 60s; log:\n%s", server.log())
			}
			time.Sleep(100 * time.Millisecond) // polling for the restart, not an assertion
		}
		check(t, c)
	})
}

// unzip extracts a PocketBase backup into dir.
func unzip(t *testing.T, raw []byte, dir string) {
	t.Helper()
	r, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.File {
		path := filepath.Join(dir, f.Name)
		if !strings.HasPrefix(path, filepath.Clean(dir)+string(os.PathSeparator)) {
			t.Fatalf("backup entry outside the data dir: %s", f.Name)
		}
		if f.FileInfo().IsDir() {
			if err := os.MkdirAll(path, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		src, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		dst.Close()
	}
}
