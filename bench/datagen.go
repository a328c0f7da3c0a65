package bench

import (
	"database/sql"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"
	"golang.org/x/crypto/bcrypt"
)

// Dataset is a chat database written straight into the real tables of an
// app's SQLite file, in batches of one transaction each (no hooks, no HTTP).
//
// Shape: Users users, Rooms group rooms of 8 members each, Messages messages
// spread over the rooms by a Zipf-like law (room of rank r gets a share
// proportional to (r+1)^-0.8: a few busy rooms, a long quiet tail, so that
// the busiest rooms hold pages of history at every size) over 30 days; 5% of
// messages carry one or two attachments, 20% one to three reactions. Every
// membership was last read one day before the newest message. Eight focus
// users are members of FocusRooms rooms each, spread over the popularity ranks.
type Dataset struct {
	Dir         string
	Messages    int
	Rooms       int
	Users       int
	Memberships int
	Media       int
	Links       int
	Reactions   int
	GenTime     time.Duration
	DBBytes     int64

	FocusUsers   []string      // members of FocusRooms rooms each
	FocusUnread  []int         // per focus user: unread messages over their rooms
	History      []HistoryRoom // the busiest rooms, with a member who reads them
	Senders      []Sender      // (user, room) pairs allowed to post
	RoomMessages []int         // messages per room rank
}

// HistoryRoom is a room whose latest page is read, and a member reading it.
type HistoryRoom struct {
	Room, Reader string
	Messages     int
}

// Sender is a user who may post into a room.
type Sender struct{ User, Room string }

const (
	datasetUsers      = 5000
	datasetRooms      = 10000
	roomSize          = 8
	focusUsers        = 8
	FocusRooms        = 200
	zipfExponent      = 0.8
	historyRooms      = 16
	senderPairs       = 64
	datasetSpan       = 30 * 24 * time.Hour
	lastSeenBeforeEnd = 24 * time.Hour
)

var memberPermissions = `["can_add_users","can_create_messages","can_edit_own_messages","can_delete_own_messages"]`
var creatorPermissions = `["can_add_users","can_remove_users","can_create_messages","can_delete_messages","can_delete_own_messages","can_edit_messages","can_edit_own_messages","can_edit_room","can_delete_room"]`
var membershipSeq atomic.Int64

var emojis = []string{"👍", "❤️", "😂", "🎉", "😮", "😢"}

// id15 is a PocketBase-shaped record id: a letter and 14 base-36 digits.
func id15(prefix byte, n int) string {
	s := strconv.FormatInt(int64(n), 36)
	return string(prefix) + strings.Repeat("0", 14-len(s)) + s
}

func pbDate(t time.Time) string { return t.UTC().Format(types.DefaultDateLayout) }

// UserID is the id of the n-th generated user.
func UserID(n int) string { return id15('u', n) }

// RoomID is the id of the room of popularity rank n.
func RoomID(n int) string { return id15('r', n) }

// sqlDB is the app's write connection pool (the driver and pragmas PocketBase uses).
func sqlDB(app core.App) *sql.DB { return app.NonconcurrentDB().(*dbx.DB).DB() }

// InsertUsers writes n users u0…u(n-1) with one shared cheap password hash.
func InsertUsers(app core.App, from, n int) error {
	hash, err := bcrypt.GenerateFromPassword([]byte("bench-password"), bcrypt.MinCost)
	if err != nil {
		return err
	}
	now := pbDate(time.Now())
	return inBatches(sqlDB(app), n, 5000, `INSERT INTO users (id, email, emailVisibility, verified, password, tokenKey, name, created, updated) VALUES (?,?,?,?,?,?,?,?,?)`,
		func(stmt *sql.Stmt, i int) error {
			id := UserID(from + i)
			_, err := stmt.Exec(id, id+"@bench.local", false, true, string(hash), "tk"+id+strconv.Itoa(i), id, now, now)
			return err
		})
}

// InsertRoom writes a group room created by members[0] with its memberships.
func InsertRoom(app core.App, room string, members []string, lastSeen string) error {
	db := sqlDB(app)
	now := pbDate(time.Now())
	if _, err := db.Exec(`INSERT INTO chat_rooms (id, name, description, avatar, type, is_public, created_by, created, updated) VALUES (?,?,?,?,?,?,?,?,?)`,
		room, "room "+room, "", "", "group", false, members[0], now, now); err != nil {
		return err
	}
	return inBatches(db, len(members), 5000, `INSERT INTO chat_room_users (id, room, user, permissions, muted, last_seen_at, created_by, created, updated) VALUES (?,?,?,?,?,?,?,?,?)`,
		func(stmt *sql.Stmt, i int) error {
			perms := memberPermissions
			if i == 0 {
				perms = creatorPermissions
			}
			_, err := stmt.Exec(id15('q', int(membershipSeq.Add(1))), room, members[i], perms, false, lastSeen, members[0], now, now)
			return err
		})
}

func inBatches(db *sql.DB, n, batch int, query string, row func(stmt *sql.Stmt, i int) error) error {
	for start := 0; start < n; start += batch {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		stmt, err := tx.Prepare(query)
		if err != nil {
			tx.Rollback()
			return err
		}
		for i := start; i < min(start+batch, n); i++ {
			if err := row(stmt, i); err != nil {
				stmt.Close()
				tx.Rollback()
				return err
			}
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// zipfRooms samples room ranks with weight (rank+1)^-s.
type zipfRooms struct{ cdf []float64 }

func newZipfRooms(n int, s float64) zipfRooms {
	cdf := make([]float64, n)
	sum := 0.0
	for i := range cdf {
		sum += math.Pow(float64(i+1), -s)
		cdf[i] = sum
	}
	for i := range cdf {
		cdf[i] /= sum
	}
	return zipfRooms{cdf}
}

func (z zipfRooms) sample(r *rand.Rand) int {
	i, _ := slices.BinarySearch(z.cdf, r.Float64())
	return min(i, len(z.cdf)-1)
}

// FocusRoomRanks are the room ranks focus user f is a member of.
func FocusRoomRanks(f int) []int {
	ranks := make([]int, FocusRooms)
	step := datasetRooms / FocusRooms
	for k := range ranks {
		ranks[k] = (k*step + 7 + 3*f) % datasetRooms
	}
	return ranks
}

// GenerateDataset writes a dataset of messages messages into the app's
// database, which must hold pbchat's collections and nothing else of chat.
func GenerateDataset(app core.App, messages int, seed uint64, progress func(string)) (*Dataset, error) {
	start := time.Now()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ds := &Dataset{Dir: app.DataDir(), Messages: messages, Rooms: datasetRooms, Users: datasetUsers}

	if err := InsertUsers(app, 0, datasetUsers); err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}

	end := time.Now().Add(-time.Minute).UTC()
	begin := end.Add(-datasetSpan)
	lastSeen := pbDate(end.Add(-lastSeenBeforeEnd))
	joined := pbDate(begin.Add(-24 * time.Hour))

	// Members per room: 8 random non-focus users, plus the focus users' rooms.
	members := make([][]string, datasetRooms)
	for room := range members {
		set := map[int]bool{}
		for len(set) < roomSize {
			set[focusUsers+r.IntN(datasetUsers-focusUsers)] = true
		}
		for u := range set {
			members[room] = append(members[room], UserID(u))
		}
		slices.Sort(members[room])
	}
	for f := 0; f < focusUsers; f++ {
		ds.FocusUsers = append(ds.FocusUsers, UserID(f))
		for _, rank := range FocusRoomRanks(f) {
			members[rank] = append(members[rank], UserID(f))
		}
	}

	db := sqlDB(app)
	err := inBatches(db, datasetRooms, 5000, `INSERT INTO chat_rooms (id, name, description, avatar, type, is_public, created_by, created, updated) VALUES (?,?,?,?,?,?,?,?,?)`,
		func(stmt *sql.Stmt, i int) error {
			_, err := stmt.Exec(RoomID(i), fmt.Sprintf("Room %d", i), "", "", "group", false, members[i][0], joined, joined)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("rooms: %w", err)
	}
	type membership struct{ room, user int }
	var all []membership
	for room, ms := range members {
		for i := range ms {
			all = append(all, membership{room, i})
		}
	}
	ds.Memberships = len(all)
	err = inBatches(db, len(all), 20000, `INSERT INTO chat_room_users (id, room, user, permissions, muted, last_seen_at, created_by, created, updated) VALUES (?,?,?,?,?,?,?,?,?)`,
		func(stmt *sql.Stmt, i int) error {
			m := all[i]
			perms := memberPermissions
			if m.user == 0 {
				perms = creatorPermissions
			}
			_, err := stmt.Exec(id15('p', i), RoomID(m.room), members[m.room][m.user], perms, false, lastSeen, members[m.room][0], joined, joined)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("memberships: %w", err)
	}

	// Messages with their attachments and reactions, 5000 per transaction.
	zipf := newZipfRooms(datasetRooms, zipfExponent)
	ds.RoomMessages = make([]int, datasetRooms)
	step := datasetSpan / time.Duration(max(messages, 1))
	lastSeenAt := end.Add(-lastSeenBeforeEnd)
	focusOf := make([]map[string]int, datasetRooms)
	for f, u := range ds.FocusUsers {
		for _, rank := range FocusRoomRanks(f) {
			if focusOf[rank] == nil {
				focusOf[rank] = map[string]int{}
			}
			focusOf[rank][u] = f
		}
	}
	ds.FocusUnread = make([]int, focusUsers)

	const batch = 5000
	words := strings.Fields("the quick brown fox jumps over a lazy dog while we plan the weekend trip and share photos of the hike")
	mediaN, linkN, reactN := 0, 0, 0
	for startMsg := 0; startMsg < messages; startMsg += batch {
		tx, err := db.Begin()
		if err != nil {
			return nil, err
		}
		msgStmt, err1 := tx.Prepare(`INSERT INTO chat_messages (id, room, user, text, edited_at, created, updated) VALUES (?,?,?,?,?,?,?)`)
		mediaStmt, err2 := tx.Prepare(`INSERT INTO chat_media (id, file, uploaded_by, created, updated) VALUES (?,?,?,?,?)`)
		linkStmt, err3 := tx.Prepare(`INSERT INTO chat_message_media (id, message, media, sequence, created, updated) VALUES (?,?,?,?,?,?)`)
		reactStmt, err4 := tx.Prepare(`INSERT INTO chat_message_reactions (id, message, user, reaction, created, updated) VALUES (?,?,?,?,?,?)`)
		if err := firstErr(err1, err2, err3, err4); err != nil {
			tx.Rollback()
			return nil, err
		}
		for i := startMsg; i < min(startMsg+batch, messages); i++ {
			rank := zipf.sample(r)
			ds.RoomMessages[rank]++
			ms := members[rank]
			author := ms[r.IntN(len(ms))]
			at := begin.Add(time.Duration(i) * step)
			created := pbDate(at)
			id := id15('x', i)
			n := 4 + r.IntN(10)
			var text strings.Builder
			fmt.Fprintf(&text, "message %d:", i)
			for w := 0; w < n; w++ {
				text.WriteByte(' ')
				text.WriteString(words[r.IntN(len(words))])
			}
			if _, err := msgStmt.Exec(id, RoomID(rank), author, text.String(), "", created, created); err != nil {
				tx.Rollback()
				return nil, fmt.Errorf("message: %w", err)
			}
			if at.After(lastSeenAt) {
				for u, f := range focusOf[rank] {
					if u != author {
						ds.FocusUnread[f]++
					}
				}
			}
			if r.Float64() < 0.05 {
				for seq := 0; seq < 1+r.IntN(2); seq++ {
					mediaID := id15('f', mediaN)
					mediaN++
					if _, err := mediaStmt.Exec(mediaID, "photo_"+mediaID+".jpg", author, created, created); err != nil {
						tx.Rollback()
						return nil, fmt.Errorf("media: %w", err)
					}
					if _, err := linkStmt.Exec(id15('l', linkN), id, mediaID, seq, created, created); err != nil {
						tx.Rollback()
						return nil, fmt.Errorf("link: %w", err)
					}
					linkN++
				}
			}
			if r.Float64() < 0.2 {
				k := 1 + r.IntN(3)
				for _, who := range r.Perm(len(ms))[:min(k, len(ms))] {
					if _, err := reactStmt.Exec(id15('e', reactN), id, ms[who], emojis[r.IntN(len(emojis))], created, created); err != nil {
						tx.Rollback()
						return nil, fmt.Errorf("reaction: %w", err)
					}
					reactN++
				}
			}
		}
		msgStmt.Close()
		mediaStmt.Close()
		linkStmt.Close()
		reactStmt.Close()
		if err := tx.Commit(); err != nil {
			return nil, err
		}
		if progress != nil && (startMsg/batch)%40 == 39 {
			progress(fmt.Sprintf("  %d/%d messages", startMsg+batch, messages))
		}
	}
	ds.Media, ds.Links, ds.Reactions = mediaN, linkN, reactN

	// What PocketBase itself runs periodically (and after schema changes).
	if _, err := db.Exec("PRAGMA optimize"); err != nil {
		return nil, err
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return nil, err
	}

	for rank := 0; rank < historyRooms; rank++ {
		ds.History = append(ds.History, HistoryRoom{Room: RoomID(rank), Reader: members[rank][0], Messages: ds.RoomMessages[rank]})
	}
	// Senders: the creators of 64 rooms from the middle of the ranking.
	for k := 0; k < senderPairs; k++ {
		rank := 100 + k*37
		ds.Senders = append(ds.Senders, Sender{User: members[rank][0], Room: RoomID(rank)})
	}
	ds.GenTime = time.Since(start)
	var pageCount, pageSize int64
	_ = db.QueryRow("PRAGMA page_count").Scan(&pageCount)
	_ = db.QueryRow("PRAGMA page_size").Scan(&pageSize)
	ds.DBBytes = pageCount * pageSize
	return ds, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
