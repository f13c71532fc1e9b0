package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wutong-paas/wutong-offline/internal/i18n"
	"github.com/wutong-paas/wutong-offline/internal/progress"
	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/client"
	"github.com/wutong-paas/wutong-offline/platform/render"
)

// The `wtctl app` commands that deploy apps: install, upgrade, rollback, history, status, logs and uninstall. They
// are thin: parse, ask the server (platform/client), print.

// tr picks the user's language (WTCTL_LANG, LC_ALL, LC_MESSAGES, LANG) for the lines that say how a change ended and
// what to do next.
func appTr(en, zh string) string {
	if i18n.FromEnv() == i18n.ZH {
		return zh
	}
	return en
}

// Local syntax checks of the value flags; the server checks them against the app model.
var (
	appComponentRE = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)
	appEnvNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	appPortNameRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	appHostRE      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
)

// valueFlags are --set, --replicas and --domain: the values given on top of the app model.
type valueFlags struct{ set, replicas, domains []string }

func (v *valueFlags) register(c *cobra.Command, upgrade bool) {
	also := ""
	if upgrade {
		also = "; any value flag replaces all the current values (give them all again), none keeps them"
	}
	c.Flags().StringArrayVar(&v.set, "set", nil, "environment variable of a component: COMPONENT.NAME=VALUE (repeatable)"+also)
	c.Flags().StringArrayVar(&v.replicas, "replicas", nil, "replicas of a component: COMPONENT=N (repeatable)")
	c.Flags().StringArrayVar(&v.domains, "domain", nil, "host name of a component's external http port: COMPONENT/PORT=HOST (repeatable)")
}

// values checks the flags' syntax and returns the values, nil when none were given. Every mistake is listed.
func (v *valueFlags) values() (*api.Values, error) {
	if len(v.set)+len(v.replicas)+len(v.domains) == 0 {
		return nil, nil
	}
	var probs []string
	bad := func(format string, a ...any) { probs = append(probs, fmt.Sprintf(format, a...)) }
	comp := func(flag, arg, name string) bool {
		if !appComponentRE.MatchString(name) {
			bad("%s %q: %q is not a component name (lower-case letters, digits and '-', starting with a letter)", flag, arg, name)
			return false
		}
		return true
	}
	out := &api.Values{}
	for _, s := range v.set {
		key, val, ok := strings.Cut(s, "=")
		c, name, ok2 := strings.Cut(key, ".")
		switch {
		case !ok || !ok2:
			bad("--set %q: write COMPONENT.NAME=VALUE, such as --set web.LOG_LEVEL=debug", s)
		case !comp("--set", s, c):
		case !appEnvNameRE.MatchString(name):
			bad("--set %q: %q is not an environment variable name (letters, digits and '_', not starting with a digit, such as LOG_LEVEL)", s, name)
		default:
			if out.Env == nil {
				out.Env = map[string]map[string]string{}
			}
			if out.Env[c] == nil {
				out.Env[c] = map[string]string{}
			}
			if _, dup := out.Env[c][name]; dup {
				bad("--set %q: %s.%s is given twice", s, c, name)
			}
			out.Env[c][name] = val
		}
	}
	for _, s := range v.replicas {
		c, num, ok := strings.Cut(s, "=")
		n, err := strconv.Atoi(num)
		switch {
		case !ok:
			bad("--replicas %q: write COMPONENT=N, such as --replicas web=3", s)
		case !comp("--replicas", s, c):
		case err != nil || n < 0:
			bad("--replicas %q: %q is not a number of replicas (0 or more, such as --replicas %s=3)", s, num, c)
		default:
			if out.Replicas == nil {
				out.Replicas = map[string]int{}
			}
			if _, dup := out.Replicas[c]; dup {
				bad("--replicas %q: component %s is given twice", s, c)
			}
			out.Replicas[c] = n
		}
	}
	for _, s := range v.domains {
		key, host, ok := strings.Cut(s, "=")
		c, port, ok2 := strings.Cut(key, "/")
		switch {
		case !ok || !ok2:
			bad("--domain %q: write COMPONENT/PORT=HOST, such as --domain web/http=shop.example.com", s)
		case !comp("--domain", s, c):
		case !appPortNameRE.MatchString(port):
			bad("--domain %q: %q is not a port name (as the app model names it, such as http or http-8080)", s, port)
		case len(host) > 253 || !appHostRE.MatchString(host):
			bad("--domain %q: %q is not a host name (lower-case DNS name, such as shop.example.com)", s, host)
		default:
			if out.Domains == nil {
				out.Domains = map[string]string{}
			}
			if _, dup := out.Domains[key]; dup {
				bad("--domain %q: %s is given twice", s, key)
			}
			out.Domains[key] = host
		}
	}
	if len(probs) > 0 {
		return nil, &usageError{errors.New(strings.Join(probs, "\n"))}
	}
	return out, nil
}

// waitFlags are --wait and --timeout.
type waitFlags struct {
	wait    bool
	timeout time.Duration
}

func (w *waitFlags) register(c *cobra.Command) {
	c.Flags().BoolVar(&w.wait, "wait", true, "follow the change until it has finished, and fail when it did (--wait=false returns once it started)")
	c.Flags().DurationVar(&w.timeout, "timeout", 10*time.Minute, "how long --wait waits (the change goes on in the server after it)")
}

// appInstallCmd is what every command about one install shares: the client, the login, and the install's team.
type appInstallCmd struct {
	team  string
	given bool // --team was given
	cl    *client.Client
	cfg   *appConfig
}

func (a *appInstallCmd) register(c *cobra.Command) {
	c.Flags().StringVar(&a.team, "team", "", "team of the install (default: your only team, or the team that has an install of that name)")
}

// open logs in and finds the team: --team, else the user's only team, else the one team with an install named
// install (when install is not "").
func (a *appInstallCmd) open(ctx context.Context, install string) error {
	var err error
	if a.cl, a.cfg, err = appClient(); err != nil {
		return err
	}
	if a.team != "" {
		a.given = true
		return nil
	}
	me, err := a.cl.Me(ctx)
	if err != nil {
		return a.hint(err, install)
	}
	if len(me.Teams) == 1 {
		a.team = me.Teams[0].Team
		return nil
	}
	if install == "" {
		if len(me.Teams) == 0 {
			return &usageError{errors.New("you are in no team: pass --team TEAM, or ask an admin to add you to one")}
		}
		return &usageError{fmt.Errorf("you are in teams %s: say which with --team TEAM", appTeamNames(me.Teams))}
	}
	all, err := a.cl.Installs(ctx, "")
	if err != nil {
		return a.hint(err, install)
	}
	var teams []string
	for _, in := range all {
		if in.Name == install {
			teams = append(teams, in.Team)
		}
	}
	switch len(teams) {
	case 0:
		return fmt.Errorf("install %s: not found in your teams (list them with: wtctl app status)", install)
	case 1:
		a.team = teams[0]
		return nil
	}
	return &usageError{fmt.Errorf("install %s is in teams %s: say which with --team TEAM", install, strings.Join(teams, ", "))}
}

func appTeamNames(ms []api.Membership) string {
	var n []string
	for _, m := range ms {
		n = append(n, m.Team)
	}
	return strings.Join(n, ", ")
}

// hint adds what to do to a server's answer: log in again, or wait for the change in progress.
func (a *appInstallCmd) hint(err error, install string) error {
	if client.IsConflict(err) && install != "" {
		return fmt.Errorf("%w\n%s", err, appTr(
			"See what is going on with: "+a.cmd("status", install)+" (wait for a change in progress to finish, then try again)",
			"查看当前情况："+a.cmd("status", install)+"（如有变更正在进行，请等它结束后重试）"))
	}
	if a.cfg != nil {
		return loginHint(err, a.cfg)
	}
	return err
}

// cmd is a wtctl app command line about install, with --team when it was given.
func (a *appInstallCmd) cmd(verb, install string) string {
	s := "wtctl app " + verb + " " + install
	if a.given {
		s += " --team " + a.team
	}
	return s
}

// changeResult is what install, upgrade and rollback print: the install and the revision, and with --wait the
// final status.
type changeResult struct {
	Install  api.Install        `json:"install"`
	Revision api.Revision       `json:"revision"`
	Status   *api.InstallStatus `json:"status,omitempty"`
}

// componentsReady counts the components with all their replicas updated and ready. While the install is deploying,
// a component with no replicas wanted may be one whose workload is not made yet, and is not counted.
func componentsReady(st api.InstallStatus) (ready int, waiting []string) {
	deploying := st.Install.State == api.StateDeploying
	for _, cs := range st.Components {
		if cs.Ready >= cs.Desired && cs.Updated >= cs.Desired && !(deploying && cs.Desired == 0 && len(cs.Pods) == 0) {
			ready++
		} else {
			waiting = append(waiting, fmt.Sprintf("%s %d/%d", cs.Name, cs.Ready, cs.Desired))
		}
	}
	return ready, waiting
}

// describe says what a revision does: "install demo 1.0.0", "upgrade to 2.0.0", "rollback to revision 1".
func describeRevision(r api.Revision, app string) string {
	switch r.Reason {
	case "install":
		return "install " + app + " " + r.Version
	case "rollback", "auto-rollback":
		return fmt.Sprintf("%s to revision %d (%s)", r.Reason, r.From, r.Version)
	}
	return r.Reason + " to " + r.Version
}

// finishChange prints a change the server started and, with --wait, follows it to its end. A change that failed or
// was rolled back is an error that says why, after the result is printed.
func (a *appInstallCmd) finishChange(c *cobra.Command, out outputFlag, wf waitFlags, ch api.Change) error {
	name, rev := ch.Install.Name, ch.Revision.Number
	res := changeResult{Install: ch.Install, Revision: ch.Revision}
	errw := c.ErrOrStderr()
	if !wf.wait {
		return out.print(c.OutOrStdout(), res, func(p printer) {
			p("Started revision %d of install %s (%s) in team %s.\n", rev, name, describeRevision(ch.Revision, ch.Install.App), ch.Install.Team)
			p("%s\n", appTr("Follow it with: "+a.cmd("status", name), "查看进度："+a.cmd("status", name)))
		})
	}
	text := out.format == "text"
	if text {
		fmt.Fprintf(errw, "install %s: revision %d started (%s)\n", name, rev, describeRevision(ch.Revision, ch.Install.App))
	}
	ctx := c.Context()
	if wf.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wf.timeout)
		defer cancel()
	}
	last := ""
	st, err := a.cl.WaitInstall(ctx, a.team, name, rev, func(st api.InstallStatus) {
		ready, waiting := componentsReady(st)
		line := fmt.Sprintf("install %s: %s, components ready %d/%d", name, st.Install.State, ready, len(st.Components))
		if len(waiting) > 0 && st.Install.State == api.StateDeploying {
			line += " (waiting for " + strings.Join(waiting, ", ") + ")"
		}
		if text && line != last {
			fmt.Fprintln(errw, line)
			last = line
		}
	})
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded) && c.Context().Err() == nil:
			return fmt.Errorf("%s", appTr(
				fmt.Sprintf("revision %d of install %s is still deploying after %s; it goes on in the server.\nFollow it with: %s", rev, name, wf.timeout, a.cmd("status", name)),
				fmt.Sprintf("安装 %s 的第 %d 个版本在 %s 后仍在部署中，服务端会继续执行。\n查看进度：%s", name, rev, wf.timeout, a.cmd("status", name))))
		case c.Context().Err() != nil:
			return fmt.Errorf("%s", appTr(
				fmt.Sprintf("stopped waiting; revision %d of install %s goes on in the server.\nFollow it with: %s", rev, name, a.cmd("status", name)),
				fmt.Sprintf("已停止等待；安装 %s 的第 %d 个版本仍在服务端继续执行。\n查看进度：%s", name, rev, a.cmd("status", name))))
		}
		return a.hint(err, name)
	}
	res.Install, res.Status = st.Install, &st
	revs, err := a.cl.Revisions(c.Context(), a.team, name)
	if err != nil {
		return a.hint(err, name)
	}
	var after *api.Revision // an automatic rollback that followed ours
	for i := range revs {
		switch r := revs[i]; {
		case r.Number == rev:
			res.Revision = r
		case r.Number > rev && r.Reason == "auto-rollback" && after == nil:
			after = &revs[i]
		}
	}
	ok := st.Install.State == api.StateReady && res.Revision.Outcome != "failed"
	if err := out.print(c.OutOrStdout(), res, func(p printer) {
		if !ok {
			return
		}
		ready, _ := componentsReady(st)
		p("%s\n", appTr(
			fmt.Sprintf("Install %s (team %s) is ready: %s %s, revision %d, components ready %d/%d.", name, st.Install.Team, st.Install.App, st.Install.Version, st.Install.Revision, ready, len(st.Components)),
			fmt.Sprintf("安装 %s（团队 %s）已就绪：%s %s，第 %d 个版本，组件就绪 %d/%d。", name, st.Install.Team, st.Install.App, st.Install.Version, st.Install.Revision, ready, len(st.Components))))
	}); err != nil {
		return err
	}
	if ok {
		return nil
	}
	var b strings.Builder
	msg := orDash(res.Revision.Message)
	switch st.Install.State {
	case api.StateRolledBack:
		b.WriteString(appTr(
			fmt.Sprintf("revision %d of install %s (%s) failed and was rolled back: %s", rev, name, describeRevision(res.Revision, st.Install.App), msg),
			fmt.Sprintf("安装 %s 的第 %d 个版本（%s）失败，已自动回滚：%s", name, rev, describeRevision(res.Revision, st.Install.App), msg)))
		if after != nil {
			b.WriteString(appTr(
				fmt.Sprintf("\nrevision %d put back revision %d (%s); install %s runs that now", after.Number, after.From, after.Version, name),
				fmt.Sprintf("\n第 %d 个版本恢复了第 %d 个版本（%s），安装 %s 现在运行的是它", after.Number, after.From, after.Version, name)))
		}
	case api.StateFailed:
		b.WriteString(appTr(
			fmt.Sprintf("revision %d of install %s (%s) failed: %s", rev, name, describeRevision(res.Revision, st.Install.App), msg),
			fmt.Sprintf("安装 %s 的第 %d 个版本（%s）失败：%s", name, rev, describeRevision(res.Revision, st.Install.App), msg)))
	default:
		b.WriteString(appTr(
			fmt.Sprintf("revision %d of install %s (%s) ended as %s (outcome %s): %s", rev, name, describeRevision(res.Revision, st.Install.App), st.Install.State, res.Revision.Outcome, msg),
			fmt.Sprintf("安装 %s 的第 %d 个版本（%s）结束于 %s（结果 %s）：%s", name, rev, describeRevision(res.Revision, st.Install.App), st.Install.State, res.Revision.Outcome, msg)))
	}
	b.WriteString(appTr("\nSee what happened with:\n  ", "查看详情：\n  ") + a.cmd("history", name) + "\n  " + a.cmd("status", name))
	return errors.New(b.String())
}

func newAppInstallCmd() *cobra.Command {
	var a appInstallCmd
	var vals valueFlags
	var wf waitFlags
	var out outputFlag
	var version, name, cluster string
	c := &cobra.Command{
		Use:   "install APP [--version V] [--name N] [--team T] [--cluster C] [--set COMPONENT.ENV=VALUE]... [--replicas COMPONENT=N]... [--domain COMPONENT/PORT=HOST]... [--wait] [--timeout 10m] [-o json]",
		Short: "Install an imported app version into a team's namespace, and follow it until it is ready",
		Example: `  wtctl app install shop --version 1.4.0
  wtctl app install shop --name shop-test --team delivery --replicas web=3 --set web.LOG_LEVEL=debug \
    --domain web/http=shop.example.com`,
		Args: exactArgs(1, "the app key"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			v, err := vals.values()
			if err != nil {
				return err
			}
			if err := a.open(c.Context(), ""); err != nil {
				return err
			}
			ch, err := a.cl.CreateInstall(c.Context(), a.team, api.NewInstall{Name: name, App: args[0], Version: version, Cluster: cluster, Values: v})
			if err != nil {
				return a.hint(err, appOr(name, args[0]))
			}
			return a.finishChange(c, out, wf, ch)
		},
	}
	c.Flags().StringVar(&version, "version", "", "version to install (default: the app's latest)")
	c.Flags().StringVar(&name, "name", "", "name of the install, unique in the team (default: the app key)")
	c.Flags().StringVar(&cluster, "cluster", "", "cluster to install on (default: local)")
	a.register(c)
	vals.register(c, false)
	wf.register(c)
	out.register(c)
	return c
}

func appOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func newAppUpgradeCmd() *cobra.Command {
	var a appInstallCmd
	var vals valueFlags
	var wf waitFlags
	var out outputFlag
	var version string
	var dryRun bool
	c := &cobra.Command{
		Use:   "upgrade INSTALL [--version V] [--set …] [--replicas …] [--domain …] [--dry-run] [--wait] [--timeout 10m] [-o json]",
		Short: "Upgrade (or downgrade) an install to another version or other values; --dry-run shows what would change",
		Example: `  wtctl app upgrade shop --version 1.5.0 --dry-run
  wtctl app upgrade shop --version 1.5.0`,
		Args: exactArgs(1, "the install name"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			v, err := vals.values()
			if err != nil {
				return err
			}
			if err := a.open(c.Context(), args[0]); err != nil {
				return err
			}
			req := api.Upgrade{Version: version, Values: v}
			if dryRun {
				plan, err := a.cl.PlanUpgrade(c.Context(), a.team, args[0], req)
				if err != nil {
					return a.hint(err, args[0])
				}
				return printPlan(c, out, plan)
			}
			ch, err := a.cl.Upgrade(c.Context(), a.team, args[0], req)
			if err != nil {
				return a.hint(err, args[0])
			}
			return a.finishChange(c, out, wf, ch)
		},
	}
	c.Flags().StringVar(&version, "version", "", "version to upgrade (or downgrade) to (default: the app's latest)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show the per-component changes and the API server's verdicts; change nothing")
	a.register(c)
	vals.register(c, true)
	wf.register(c)
	out.register(c)
	return c
}

// printPlan prints an upgrade's preview; it is an error when the API server refused any object.
func printPlan(c *cobra.Command, out outputFlag, plan api.Plan) error {
	var ch render.Changes
	if len(plan.Changes) > 0 {
		if err := json.Unmarshal(plan.Changes, &ch); err != nil {
			return fmt.Errorf("read the server's change list: %w", err)
		}
	}
	var refused []api.Verdict
	for _, v := range plan.Verdicts {
		if v.Error != "" {
			refused = append(refused, v)
		}
	}
	if err := out.print(c.OutOrStdout(), plan, func(p printer) {
		p("%s", ch.String())
		if len(refused) == 0 {
			p("%s\n", appTr(
				fmt.Sprintf("API server dry run: all %d objects accepted. Nothing was changed.", len(plan.Verdicts)),
				fmt.Sprintf("API 服务器试运行：全部 %d 个对象均被接受。未做任何更改。", len(plan.Verdicts))))
			return
		}
		p("%s\n", appTr(
			fmt.Sprintf("API server dry run: %d of %d objects refused:", len(refused), len(plan.Verdicts)),
			fmt.Sprintf("API 服务器试运行：%d 个对象中有 %d 个被拒绝：", len(plan.Verdicts), len(refused))))
		for _, v := range refused {
			p("  ✗ %s: %s\n", v.Object, v.Error)
		}
	}); err != nil {
		return err
	}
	if len(refused) > 0 || !plan.Accepted {
		return errors.New(appTr(
			fmt.Sprintf("the API server would refuse %d objects of the upgrade of %s to %s: fix them before upgrading (nothing was changed)", len(refused), plan.Install, plan.ToVersion),
			fmt.Sprintf("API 服务器会拒绝把 %s 升级到 %s 的 %d 个对象：请先修正后再升级（未做任何更改）", plan.Install, plan.ToVersion, len(refused))))
	}
	return nil
}

func newAppRollbackCmd() *cobra.Command {
	var a appInstallCmd
	var wf waitFlags
	var out outputFlag
	var revision int
	c := &cobra.Command{
		Use:   "rollback INSTALL [--revision N] [--wait] [--timeout 10m] [-o json]",
		Short: "Put an install back to an earlier revision's exact objects (default: the last good one before the current)",
		Example: `  wtctl app history shop
  wtctl app rollback shop --revision 3`,
		Args: exactArgs(1, "the install name"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if revision < 0 {
				return &usageError{fmt.Errorf("--revision %d: give a revision number from 'wtctl app history %s'", revision, args[0])}
			}
			if err := a.open(c.Context(), args[0]); err != nil {
				return err
			}
			ch, err := a.cl.Rollback(c.Context(), a.team, args[0], api.Rollback{Revision: revision})
			if err != nil {
				return a.hint(err, args[0])
			}
			return a.finishChange(c, out, wf, ch)
		},
	}
	c.Flags().IntVar(&revision, "revision", 0, "revision to go back to (default: the last succeeded one before the deployed one)")
	a.register(c)
	wf.register(c)
	out.register(c)
	return c
}

func newAppHistoryCmd() *cobra.Command {
	var a appInstallCmd
	var out outputFlag
	c := &cobra.Command{
		Use:   "history INSTALL [-o json]",
		Short: "List an install's revisions: version, why, how each ended, when and by whom",
		Args:  exactArgs(1, "the install name"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if err := a.open(c.Context(), args[0]); err != nil {
				return err
			}
			inst, err := a.cl.Install(c.Context(), a.team, args[0])
			if err != nil {
				return a.hint(err, args[0])
			}
			revs, err := a.cl.Revisions(c.Context(), a.team, args[0])
			if err != nil {
				return a.hint(err, args[0])
			}
			return out.print(c.OutOrStdout(), revs, func(p printer) {
				printHistory(c.OutOrStdout(), p, inst, revs)
			})
		},
	}
	a.register(c)
	out.register(c)
	return c
}

// printHistory prints the revisions oldest first, marks the deployed one, and gives the messages of those that
// failed or were automatic rollbacks.
func printHistory(w io.Writer, p printer, inst api.Install, revs []api.Revision) {
	revs = slices.Clone(revs)
	slices.SortFunc(revs, func(a, b api.Revision) int { return a.Number - b.Number })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tVERSION\tREASON\tOUTCOME\tWHEN\tBY")
	for _, r := range revs {
		num := strconv.Itoa(r.Number)
		if r.Number == inst.Deployed {
			num += " (deployed)"
		}
		reason := r.Reason
		if r.From != 0 {
			reason += fmt.Sprintf(" (from %d)", r.From)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", num, r.Version, reason, r.Outcome, r.CreatedAt.Local().Format(time.DateTime), orDash(r.CreatedBy))
	}
	tw.Flush()
	for _, r := range revs {
		switch {
		case r.Message == "":
		case r.Reason == "auto-rollback":
			p("revision %d (auto-rollback, %s): %s\n", r.Number, r.Outcome, r.Message)
		case r.Outcome == "failed":
			p("revision %d (failed): %s\n", r.Number, r.Message)
		}
	}
}

func newAppStatusCmd() *cobra.Command {
	var a appInstallCmd
	var out outputFlag
	c := &cobra.Command{
		Use:   "status [INSTALL] [-o json]",
		Short: "List installs with their state, or show one: components, pods and the last events",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &usageError{fmt.Errorf("%s takes at most one install name (got %d arguments)\nSee '%s --help'", c.CommandPath(), len(args), c.CommandPath())}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			if len(args) == 0 {
				var err error
				if a.cl, a.cfg, err = appClient(); err != nil {
					return err
				}
				ins, err := a.cl.Installs(c.Context(), a.team)
				if err != nil {
					return a.hint(err, "")
				}
				return out.print(c.OutOrStdout(), ins, func(p printer) { printInstalls(c.OutOrStdout(), p, ins) })
			}
			if err := a.open(c.Context(), args[0]); err != nil {
				return err
			}
			st, err := a.cl.Status(c.Context(), a.team, args[0])
			if err != nil {
				return a.hint(err, args[0])
			}
			return out.print(c.OutOrStdout(), st, func(p printer) { printInstallStatus(c.OutOrStdout(), p, st) })
		},
	}
	c.Flags().StringVar(&a.team, "team", "", "team of the install; without INSTALL, list only that team's installs")
	out.register(c)
	return c
}

func printInstalls(w io.Writer, p printer, ins []api.Install) {
	if len(ins) == 0 {
		p("No installs yet: install an app with 'wtctl app install APP'.\n")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTALL\tTEAM\tAPP\tVERSION\tREVISION\tSTATE\tCLUSTER\tUPDATED")
	for _, in := range ins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", in.Name, in.Team, in.App, orDash(in.Version), in.Revision, in.State, in.Cluster,
			in.UpdatedAt.Local().Format(time.DateTime))
	}
	tw.Flush()
}

func printInstallStatus(w io.Writer, p printer, st api.InstallStatus) {
	in := st.Install
	ready, _ := componentsReady(st)
	p("Install %s  team %s  app %s %s  revision %d (deployed %d)  cluster %s  namespace %s\n", in.Name, in.Team, in.App, orDash(in.Version),
		in.Revision, in.Deployed, in.Cluster, in.Namespace)
	p("State: %s  components ready %d/%d\n", st.State, ready, len(st.Components))
	if in.Message != "" {
		p("Message: %s\n", in.Message)
	}
	if len(st.Components) > 0 {
		p("\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "COMPONENT\tKIND\tWORKLOAD\tREADY\tUPDATED")
		for _, cs := range st.Components {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\n", cs.Name, cs.Kind, cs.Workload, cs.Ready, cs.Desired, cs.Updated)
		}
		tw.Flush()
	}
	pods := false
	for _, cs := range st.Components {
		pods = pods || len(cs.Pods) > 0
	}
	if pods {
		p("\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "POD\tCOMPONENT\tPHASE\tREADY\tRESTARTS\tNODE\tPROBLEM")
		for _, cs := range st.Components {
			for _, pod := range cs.Pods {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%d\t%s\t%s\n", pod.Name, cs.Name, pod.Phase, pod.Ready, pod.Restarts, orDash(pod.Node), pod.Problem)
			}
		}
		tw.Flush()
	}
	if len(st.Events) > 0 {
		p("\nLast events:\n")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tTYPE\tOBJECT\tREASON\tMESSAGE")
		for _, e := range st.Events {
			msg := e.Message
			if e.Count > 1 {
				msg += fmt.Sprintf(" (×%d)", e.Count)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.Type, e.Object, e.Reason, msg)
		}
		tw.Flush()
	}
}

func newAppLogsCmd() *cobra.Command {
	var a appInstallCmd
	var opts client.LogOptions
	c := &cobra.Command{
		Use:   "logs INSTALL COMPONENT [--pod P] [-f] [--tail N]",
		Short: "Print (or follow) the logs of a component's pods",
		Example: `  wtctl app logs shop web --tail 50
  wtctl app logs shop web -f`,
		Args: exactArgs(2, "the install name and the component"),
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Tail < 0 {
				return &usageError{fmt.Errorf("--tail %d: give a number of lines, such as 100", opts.Tail)}
			}
			if err := a.open(c.Context(), args[0]); err != nil {
				return err
			}
			opts.Component = args[1]
			err := a.cl.Logs(c.Context(), a.team, args[0], opts, c.OutOrStdout())
			if opts.Follow && errors.Is(err, context.Canceled) {
				return nil // interrupted: that is how following ends
			}
			if err != nil {
				return a.hint(err, args[0])
			}
			return nil
		},
	}
	c.Flags().StringVar(&opts.Pod, "pod", "", "only this pod of the component")
	c.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep streaming new lines until interrupted")
	c.Flags().Int64Var(&opts.Tail, "tail", 0, "start with the last N lines of each pod (default: the server's, 100)")
	a.register(c)
	return c
}

func newAppUninstallCmd() *cobra.Command {
	var a appInstallCmd
	var out outputFlag
	var deleteData, yes bool
	c := &cobra.Command{
		Use:   "uninstall INSTALL [--delete-data] [--yes]",
		Short: "Remove an install; its volumes and their data stay unless --delete-data",
		Example: `  wtctl app uninstall shop-test
  wtctl app uninstall shop-test --delete-data --yes`,
		Args: exactArgs(1, "the install name"),
		RunE: func(c *cobra.Command, args []string) error {
			if err := out.check(); err != nil {
				return err
			}
			name := args[0]
			if err := a.open(c.Context(), name); err != nil {
				return err
			}
			inst, err := a.cl.Install(c.Context(), a.team, name)
			if err != nil {
				return a.hint(err, name)
			}
			if deleteData && !yes {
				if err := confirmDeleteData(c, inst); err != nil {
					return err
				}
			}
			un, err := a.cl.Uninstall(c.Context(), a.team, name, deleteData)
			if err != nil {
				return a.hint(err, name)
			}
			return out.print(c.OutOrStdout(), un, func(p printer) {
				switch {
				case deleteData:
					p("%s\n", appTr(fmt.Sprintf("Uninstalled %s and deleted its volumes and their data.", name),
						fmt.Sprintf("已卸载 %s，并删除了它的存储卷及其数据。", name)))
				case len(un.KeptVolumes) == 0:
					p("%s\n", appTr(fmt.Sprintf("Uninstalled %s. It had no volumes.", name), fmt.Sprintf("已卸载 %s，它没有存储卷。", name)))
				default:
					p("%s\n", appTr(
						fmt.Sprintf("Uninstalled %s. Its %d volumes are kept, with their data, in namespace %s:", name, len(un.KeptVolumes), inst.Namespace),
						fmt.Sprintf("已卸载 %s。它的 %d 个存储卷及数据保留在命名空间 %s 中：", name, len(un.KeptVolumes), inst.Namespace)))
					for _, v := range un.KeptVolumes {
						p("  %s\n", v)
					}
					p("%s\n", appTr(
						fmt.Sprintf("Installing %s again under the same name uses them again; to delete them: kubectl -n %s delete pvc %s",
							inst.App, inst.Namespace, strings.Join(un.KeptVolumes, " ")),
						fmt.Sprintf("以同一名称重新安装 %s 会继续使用它们；如要删除：kubectl -n %s delete pvc %s",
							inst.App, inst.Namespace, strings.Join(un.KeptVolumes, " "))))
				}
			})
		},
	}
	c.Flags().BoolVar(&deleteData, "delete-data", false, "also delete the install's volumes and their data (cannot be undone)")
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	a.register(c)
	out.register(c)
	return c
}

// confirmDeleteData asks the person at the terminal to type the install's name before its data is destroyed.
func confirmDeleteData(c *cobra.Command, inst api.Install) error {
	in := c.InOrStdin()
	if !progress.IsTerminal(in) {
		return &usageError{errors.New(appTr(
			"--delete-data destroys the install's volumes and their data: confirm with --yes (no terminal to ask on)",
			"--delete-data 会销毁该安装的存储卷及其数据：请加 --yes 确认（没有可交互的终端）"))}
	}
	fmt.Fprint(c.ErrOrStderr(), appTr(
		fmt.Sprintf("This deletes install %s AND the data of its volumes in namespace %s; it cannot be undone.\nType the install name (%s) to go on: ", inst.Name, inst.Namespace, inst.Name),
		fmt.Sprintf("这将删除安装 %s 以及它在命名空间 %s 中存储卷里的全部数据，且无法恢复。\n输入安装名称（%s）以继续：", inst.Name, inst.Namespace, inst.Name)))
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if strings.TrimSpace(line) != inst.Name {
		return errors.New(appTr("not confirmed: nothing was deleted", "未确认：未删除任何内容"))
	}
	return nil
}
