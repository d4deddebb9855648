package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/spf13/pflag"
	"github.com/tracevisor/tracevisor/guest-kernel/initramfs"
	"github.com/tracevisor/tracevisor/vmm"
)

const runHelp = `Usage: vmm run [flags] [-- CMD [ARGS...]]

Boot a Linux guest on KVM. With CMD, the guest's init runs it (PATH is the
guest's busybox), its output streams to stdout, the guest powers off and vmm
exits with CMD's exit status (128+N if signal N killed it). Without CMD, the
guest console is attached to this terminal with a busybox shell; type
Ctrl-A x to stop the guest from the host.

  vmm run -- sh -c 'echo $((6*7))'     prints 42, exits 0
  vmm run -- false                     exits 1
  vmm run --cpus 2 --mem 512M          interactive shell on a 2-vCPU guest
  vmm run --disk img -- md5sum /dev/vda   a raw image as a virtio-blk disk
  vmm run --probe catalogue:signal --events ev.jsonl -- sh -c 'sleep 30 & kill $!'
                                       every signal sent in the guest, seen
                                       by a kprobe, as JSON lines in ev.jsonl

Snapshots: 'vmm snapshot --api SOCKET DIR' writes a running guest to DIR,
and 'vmm run --restore DIR' resumes it in a new vmm where it was, in
milliseconds: its memory is mapped copy-on-write from DIR, so clones of
one snapshot share its clean pages.
  Kept: every vCPU, the in-kernel interrupt controllers, timer and clock,
  the UART, keyboard controller and CMOS, each virtio device with its
  queues, and the probe host (the probes armed, their ids and counters):
  the guest's command or shell goes on, its probes still fire.
  Must match: the same vmm build and host profile, and the same --cpus,
  --mem, --console, --disk and --net flags in the same order (a read-only
  disk stays read-only). A restore names what differs and refuses.
  Not kept: the disk images: give each --disk the image as it was at the
  snapshot (unchanged since, or a copy made while the guest was paused:
  'vmm snapshot --paused', copy, 'vmm resume'). The kernel, initrd and
  command line are not needed (not allowed with --restore), nor --probe
  (attach more with 'vmm probe attach'); fence rules, --events, --report
  and --api are this run's. The restored console reads stdin when it is a
  terminal, a pipe or a socket: a shell snapshotted at its prompt takes new
  commands (Ctrl-A x in that input stops the vmm, as on a terminal).
  A clone's identity: each NIC keeps the snapshot's MAC (the guest's driver
  read it at boot and cannot be told another; --net without mac= takes the
  snapshot's), and the guest keeps the addresses it set; a tap that vmm
  creates gets a host-side MAC made from the guest's (fe: and its last five
  bytes; fa: where the guest's begins with fe), the same on a restore, so
  the guest's neighbour entry for the host stays right. Run a clone on a
  link of its own (its own --net switch:NAME or tap), or change its
  addresses inside the guest, before two clones share a network.

  vmm snapshot --api /tmp/vm.sock /var/tmp/snap
  vmm run --restore /var/tmp/snap --api /tmp/clone.sock --net switch:clone

Flags:
%s
Exit codes when the guest ends on its own (no command status to report):
  0   guest powered off        80  guest reset (reboot)
  81  triple fault             82  guest kernel panic
  83  instruction the host cannot execute
  84  KVM or VMM internal error
  85  stopped from the host (Ctrl-A x, signal, API stop)
  86  fenced (vCPUs stopped for good by 'vmm fence' or a --fence-on
      rule), then stopped from the host
vmm's own errors: 1 (setup failed), 2 (bad command line).
`

type runFlags struct {
	kernel, initrd, cmdline, systemMap string
	mem                                string
	cpus                               int
	profile                            string
	report                             string
	verbose                            bool
	profileGuest                       bool
	disks                              []string
	nics                               []string
	console                            string
	probes                             []string
	events, api                        string
	fenceOn                            []string
	restore                            string
}

func runCmd(args []string) int {
	var f runFlags
	fs := pflag.NewFlagSet("vmm run", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVar(&f.kernel, "kernel", "", "guest kernel: vmlinux ELF (PVH boot) or bzImage (default: the project's build/guest-kernel/vmlinux)")
	fs.StringVar(&f.initrd, "initrd", "", "initramfs (newc cpio, uncompressed) (default: the project's build/initramfs.cpio)")
	fs.StringVar(&f.cmdline, "cmdline", "", "extra kernel command-line text, appended after vmm's own parameters")
	fs.StringVar(&f.mem, "mem", "256M", "guest RAM: 256M, 1G, ... (a bare number means MiB)")
	fs.IntVar(&f.cpus, "cpus", 1, fmt.Sprintf("number of vCPUs (1-%d)", vmm.MaxCPUs))
	fs.StringArrayVar(&f.disks, "disk", nil, "raw disk image PATH[,ro] as a virtio-blk device (repeatable: /dev/vda, /dev/vdb, ...)")
	fs.StringArrayVar(&f.nics, "net", nil, "virtio-net NIC: tap:NAME or switch:NAME (vmm processes naming one switch share it), with ,mac=XX:XX:XX:XX:XX:XX (repeatable)")
	fs.StringVar(&f.console, "console", "serial", "guest console: serial (COM1, ttyS0) or virtio (virtio console, hvc0)")
	fs.StringArrayVar(&f.probes, "probe", nil, "arm a probe before user space starts: catalogue:NAME[:comm=SERVICE] or 'p:NAME SYMBOL[+OFF] [ARG=%REG ...] [FILTER ...]' (repeatable; see 'vmm probe --help')")
	fs.StringVar(&f.events, "events", "", "write every probe event to this file, one JSON object a line")
	fs.StringVar(&f.api, "api", "", "serve the control API on this unix socket ('vmm probe', 'vmm inject', 'vmm fence')")
	fs.StringArrayVar(&f.fenceOn, "fence-on", nil, "fence the guest (stop its vCPUs for good) as soon as a probe event matches RULE: class=oom|panic|oops, class=signal,comm=httpd,sig=KILL|TERM|SEGV, class=exit,comm=httpd (repeatable; the events come from the probes armed, e.g. --probe catalogue:signal)")
	fs.StringVar(&f.profile, "host-profile", "auto", "auto, hardware (VT-x/AMD-V KVM) or emulated (KVM that emulates guest kernel mode, e.g. PVM); see 'vmm doctor'")
	fs.StringVar(&f.restore, "restore", "", "resume the guest of the snapshot in this directory (see Snapshots above) instead of booting a kernel; give the snapshot's --cpus, --mem, --console, --disk and --net")
	fs.StringVar(&f.systemMap, "system-map", "", "System.map naming kernel addresses in diagnostics (default: System.map beside the kernel)")
	fs.StringVar(&f.report, "report", "", "write a JSON run report (boot time, ending, exit code, VMM memory) to this file")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "show the kernel's boot messages and VMM diagnostics")
	fs.BoolVar(&f.profileGuest, "profile-guest", false, "sample the guest's RIP every 7 ms and print the busiest kernel functions on stderr when it ends")
	fs.Usage = func() { fmt.Fprintf(os.Stderr, runHelp, fs.FlagUsages()) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "vmm run: %v\nRun 'vmm run --help' for usage.\n", err)
		return exitUsage
	}
	command := fs.Args()
	if fs.ArgsLenAtDash() < 0 && len(command) > 0 {
		fmt.Fprintf(os.Stderr, "vmm run: unexpected argument %q: put the guest command after --\n", command[0])
		return exitUsage
	}
	if f.restore != "" && len(command) > 0 {
		fmt.Fprintf(os.Stderr, "vmm run: --restore with a command (%q): a restored guest goes on with what it was running\n", command[0])
		return exitUsage
	}
	code, err := run(f, command)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmm run: %v\n", err)
		return exitError
	}
	return code
}

// runReport is the JSON written by --report.
type runReport struct {
	BootToInitMS   float64 `json:"boot_to_init_ms,omitempty"`
	Ending         string  `json:"ending"`
	ExitCode       int     `json:"exit_code"`
	CommandStatus  *int    `json:"command_status,omitempty"`
	GuestRAMMiB    uint64  `json:"guest_ram_mib"`
	VMMOverheadKiB uint64  `json:"vmm_rss_beyond_guest_ram_kib"`
	Profile        string  `json:"host_profile"`
	CPUs           int     `json:"cpus"`
	RestoredFrom   string  `json:"restored_from,omitempty"`
	RestoreMS      float64 `json:"restore_ms,omitempty"`
	// StartToGuestMS: from the vmm's start to the guest's first
	// instruction (the first KVM_RUN); for a restore, the time until the
	// guest runs again.
	StartToGuestMS float64 `json:"start_to_guest_ms,omitempty"`
}

func run(f runFlags, command []string) (int, error) {
	plan, err := checkRun(f, procMeminfo)
	if err != nil {
		return 0, err
	}
	mem, profile := plan.mem, plan.profile
	if profile == 0 {
		profile, _ = vmm.DetectProfile("/")
	}
	restoring := f.restore != ""
	if f.kernel == "" {
		if f.kernel, err = findDefault(defaultKernel, "--kernel", "guest-kernel"); err != nil && !restoring {
			return 0, err
		}
	}
	if f.initrd == "" && !restoring {
		if f.initrd, err = findDefault(defaultInitramfs, "--initrd", "initramfs"); err != nil {
			return 0, err
		}
	}
	var kernel *mappedFile
	var initrd []byte
	if !restoring {
		if kernel, err = mapFile(f.kernel, "kernel"); err != nil {
			return 0, err
		}
		defer kernel.Close()
		if initrd, err = loadInitrd(f.initrd, command); err != nil {
			return 0, err
		}
	}
	syms := loadSymbols(f.systemMap, f.kernel)
	virtio, closeDisks, err := openDisks(f.disks)
	if err != nil {
		return 0, err
	}
	defer closeDisks()
	var savedMACs map[int][6]byte
	if restoring {
		savedMACs = snapshotMACs(f.restore, len(f.nics))
	}
	nics, gates, closeNICs, err := openNICs(f.nics, savedMACs)
	if err != nil {
		return 0, err
	}
	defer closeNICs()
	virtio = append(virtio, nics...)
	probes, err := newProbing(plan.probes, f.events)
	if err != nil {
		return 0, err
	}
	virtio = append(virtio, probes.device())
	defer probes.stop(false) // when the guest never ran

	extra := f.cmdline
	if f.verbose {
		extra = "loglevel=7 " + extra
	}
	// A restored guest goes on with what it ran: its console reads this
	// run's stdin when that is a terminal, a pipe or a socket (someone
	// types or feeds its shell; its output then keeps the console's \r\n,
	// as a booted shell's does), else its command's output only streams.
	interactive := len(command) == 0 && (!restoring || isTerminal(os.Stdin) || isPipe(os.Stdin))
	out := io.Writer(os.Stdout)
	if !interactive && !isTerminal(os.Stdout) {
		out = &crlfFilter{w: os.Stdout}
	}
	cfg := vmm.Config{
		Initrd:   initrd,
		Cmdline:  extra,
		MemBytes: mem,
		CPUs:     f.cpus,
		Profile:  profile,
		Console:  out,
		Symbols:  syms,
		Virtio:   virtio,

		VirtioConsole: f.console == "virtio",

		ProfileGuest: f.profileGuest,

		Restore: f.restore,
		Layer:   probes,
	}
	if kernel != nil {
		cfg.Kernel = kernel.data
	}
	if f.verbose || f.profileGuest {
		cfg.Log = os.Stderr
	}
	var restore func()
	if interactive {
		in := &escapeReader{r: os.Stdin}
		cfg.ConsoleIn = in
		if isTerminal(os.Stdin) {
			if restore, err = makeRaw(os.Stdin); err != nil {
				return 0, err
			}
			defer restore()
		}
	}
	built := time.Now()
	m, err := vmm.New(cfg)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	restoreTook := time.Since(built)
	kernel.Close()
	initrd = nil
	cfg.Initrd = nil
	debug.FreeOSMemory()
	if f.verbose {
		fmt.Fprintf(os.Stderr, "vmm: host profile %s; kernel command line: %s\n", profile, m.Cmdline())
		if restoring {
			fmt.Fprintf(os.Stderr, "vmm: restored from %s in %v\n", f.restore, restoreTook)
		}
	}
	if r, ok := cfg.ConsoleIn.(*escapeReader); ok {
		r.machine.Store(m)
	}
	for _, g := range gates {
		g.attach(m)
	}
	if err := probes.start(m, f.api, plan.fenceOn); err != nil {
		return 0, err
	}
	stopOnSignals(m)

	ending := m.Run()
	if err := probes.stop(true); err != nil {
		fmt.Fprintf(os.Stderr, "vmm: %v\n", err)
	}
	if restore != nil {
		restore()
		restore = nil
	}
	code := ending.ExitCode()
	if ending.Kind != vmm.EndPoweroff || f.verbose {
		fmt.Fprintf(os.Stderr, "vmm: %s\n", ending)
	}
	for i, g := range gates {
		if tx, rx := g.dropped(); tx+rx > 0 {
			fmt.Fprintf(os.Stderr, "vmm: net%d: fenced: %d frames from the guest and %d to it dropped\n", i, tx, rx)
		}
	}
	if f.report != "" {
		rep := runReport{
			Ending:         ending.String(),
			ExitCode:       code,
			CommandStatus:  ending.Status,
			GuestRAMMiB:    mem >> 20,
			VMMOverheadKiB: m.OverheadRSSKiB(),
			Profile:        profile.String(),
			CPUs:           f.cpus,
		}
		if restoring {
			rep.RestoredFrom = f.restore
			rep.RestoreMS = float64(restoreTook) / float64(time.Millisecond)
		}
		if t, ok := m.FirstEntry(); ok {
			rep.StartToGuestMS = float64(t.Sub(processStart)) / float64(time.Millisecond)
		}
		if d, ok := m.BootTime(); ok {
			rep.BootToInitMS = float64(d) / float64(time.Millisecond)
		}
		if err := writeJSON(f.report, rep); err != nil {
			return 0, err
		}
	}
	return code, nil
}

// loadInitrd reads the initramfs and, when a command is given, appends the
// cpio overlay that tells the guest's init what to run.
func loadInitrd(path string, command []string) ([]byte, error) {
	base, err := mapFile(path, "initrd")
	if err != nil {
		return nil, err
	}
	defer base.Close()
	var overlay []byte
	if len(command) > 0 {
		if overlay, err = initramfs.CommandOverlay(command); err != nil {
			return nil, err
		}
	}
	b := make([]byte, 0, len(base.data)+len(overlay))
	b = append(b, base.data...)
	return append(b, overlay...), nil
}

// loadSymbols names --system-map, or System.map beside the kernel, to be
// read only if a diagnostic needs it. A missing explicit file is reported;
// a missing default is not (diagnostics just lack names).
func loadSymbols(path, kernel string) *vmm.Symbols {
	if path != "" {
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(os.Stderr, "vmm run: warning: --system-map: %v\n", err)
		}
	} else {
		path = filepath.Join(filepath.Dir(kernel), "System.map")
	}
	return vmm.LazySystemMap(path)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
