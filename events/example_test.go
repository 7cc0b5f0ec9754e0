package events_test

import (
	"fmt"

	"github.com/todocdc/pipeline/events"
)

// A subject of the registry is the topic and the record's full name (TopicRecordNameStrategy).
func ExampleSubject() {
	var ev events.Event = events.TodoCreated{TodoID: "t1", UserID: "alice", Title: "milk", Status: events.StatusPending}
	fmt.Println(ev.EventType(), ev.AggregateID())
	fmt.Println(events.Subject(events.Topic, ev.RecordName()))
	// Output:
	// todos.task.created t1
	// todos.task.events-com.todos.events.TodoCreated
}
