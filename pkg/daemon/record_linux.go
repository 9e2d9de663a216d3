package daemon

import "github.com/picoseg/picoseg/pkg/learn"

// startRecord starts the record of the flows devices open, for `learn
// --from-daemon`, when the options ask for one. It is bounded
// (learn.DefaultRecordEntries) and saved every minute and at stop; a
// failed save is logged, never fatal: the firewall matters more than
// what it learns.
func (d *Daemon) startRecord() {
	if d.opts.LearnRecord == "" {
		return
	}
	d.record = learn.NewRecorder(0, d.cur.Policy.Location)
	d.devs.record = d.record.FlowStarted
	d.log.Info("recording the flows devices open, for picoseg learn --from-daemon", "file", d.opts.LearnRecord)
	d.atStop(d.saveRecord)
}

func (d *Daemon) saveRecord() {
	if d.record == nil {
		return
	}
	if err := d.record.Save(d.opts.LearnRecord); err != nil {
		d.log.Warn("saving the learning record", "err", err)
	}
}
