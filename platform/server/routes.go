package server

import (
	_ "embed"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wutong-paas/wutong-offline/platform/api"
	"github.com/wutong-paas/wutong-offline/platform/auth"
)

// routeTable lists every operation, top to bottom. openapi.json documents the same list (a test keeps them equal).
func (s *Server) routeTable() []route {
	p := api.Prefix
	return []route{
		{method: "GET", pattern: "/healthz", name: "health", public: true, handle: s.health},
		{method: "GET", pattern: "/metrics", name: "metrics", public: true, handle: s.serveMetrics},
		{method: "GET", pattern: p + "/openapi.json", name: "openapi", public: true, handle: serveOpenAPI},

		{method: "POST", pattern: p + "/login", name: "login", public: true, accepts: api.MediaJSON, maxBody: 8 << 10, handle: s.login},
		{method: "POST", pattern: p + "/logout", name: "logout", handle: s.logout},
		{method: "GET", pattern: p + "/me", name: "me", handle: s.me},
		{method: "POST", pattern: p + "/me/password", name: "changePassword", accepts: api.MediaJSON, handle: s.changePassword},

		{method: "GET", pattern: p + "/tokens", name: "listTokens", handle: s.listTokens},
		{method: "POST", pattern: p + "/tokens", name: "createToken", accepts: api.MediaJSON, handle: s.createToken},
		{method: "DELETE", pattern: p + "/tokens/{id}", name: "deleteToken", handle: s.deleteToken},

		{method: "GET", pattern: p + "/users", name: "listUsers", handle: s.listUsers},
		{method: "POST", pattern: p + "/users", name: "createUser", accepts: api.MediaJSON, handle: s.createUser},
		{method: "DELETE", pattern: p + "/users/{user}/tokens", name: "revokeUserTokens", handle: s.revokeUserTokens},

		{method: "GET", pattern: p + "/teams", name: "listTeams", handle: s.listTeams},
		{method: "POST", pattern: p + "/teams", name: "createTeam", accepts: api.MediaJSON, handle: s.createTeam},
		{method: "GET", pattern: p + "/teams/{team}", name: "getTeam", handle: s.getTeam},
		{method: "GET", pattern: p + "/teams/{team}/members", name: "listMembers", handle: s.listMembers},
		{method: "PUT", pattern: p + "/teams/{team}/members/{user}", name: "setMember", accepts: api.MediaJSON, handle: s.setMember},
		{method: "DELETE", pattern: p + "/teams/{team}/members/{user}", name: "removeMember", handle: s.removeMember},

		{method: "GET", pattern: p + "/apps", name: "listApps", handle: s.listApps},
		{method: "GET", pattern: p + "/apps/{app}", name: "getApp", handle: s.getApp},
		{method: "GET", pattern: p + "/apps/{app}/versions", name: "listVersions", handle: s.listVersions},
		{method: "GET", pattern: p + "/apps/{app}/versions/{version}", name: "getVersion", handle: s.getVersion},
		{method: "GET", pattern: p + "/apps/{app}/versions/{version}/package", name: "exportVersion", transfer: download, handle: s.exportVersion},

		{method: "GET", pattern: p + "/installs", name: "listAllInstalls", handle: s.listInstalls},
		{method: "GET", pattern: p + "/teams/{team}/installs", name: "listInstalls", handle: s.listInstalls},
		{method: "POST", pattern: p + "/teams/{team}/installs", name: "createInstall", accepts: api.MediaJSON, handle: s.createInstall},
		{method: "GET", pattern: p + "/teams/{team}/installs/{install}", name: "getInstall", handle: s.getInstall},
		{method: "DELETE", pattern: p + "/teams/{team}/installs/{install}", name: "uninstall", handle: s.uninstall},
		{method: "POST", pattern: p + "/teams/{team}/installs/{install}/upgrade", name: "upgradeInstall", accepts: api.MediaJSON, handle: s.upgradeInstall},
		{method: "POST", pattern: p + "/teams/{team}/installs/{install}/rollback", name: "rollbackInstall", accepts: api.MediaJSON, handle: s.rollbackInstall},
		{method: "GET", pattern: p + "/teams/{team}/installs/{install}/revisions", name: "listRevisions", handle: s.listRevisions},
		{method: "GET", pattern: p + "/teams/{team}/installs/{install}/status", name: "installStatus", handle: s.installStatus},
		{method: "GET", pattern: p + "/teams/{team}/installs/{install}/logs", name: "installLogs", transfer: stream, handle: s.installLogs},

		{method: "POST", pattern: p + "/imports", name: "createImport", accepts: api.MediaPackage, transfer: upload, handle: s.createImport},
		{method: "GET", pattern: p + "/imports", name: "listImports", handle: s.listImports},
		{method: "GET", pattern: p + "/imports/{id}", name: "getImport", handle: s.getImport},
	}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	h := api.Health{Status: "ok", Checks: map[string]string{"store": "ok"}}
	code := http.StatusOK
	if err := s.store.Ping(r.Context()); err != nil {
		h.Status, h.Checks["store"], code = "failing", err.Error(), http.StatusServiceUnavailable
	}
	return reply(w, code, h)
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ *auth.Principal) error {
	w.Header().Set("Content-Type", api.MediaJSON)
	_, err := w.Write(openAPI)
	return err
}
