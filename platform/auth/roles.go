package auth

import (
	"fmt"
	"slices"

	"github.com/wutong-paas/wutong-offline/platform/store"
)

// Action is something a user may be allowed to do within a team.
type Action string

// Actions, from least to most privileged.
const (
	Read        Action = "read"         // see the team, its apps, versions and imports
	Import      Action = "import"       // import packages into the team's market
	Deploy      Action = "deploy"       // install, upgrade, roll back and uninstall the team's apps
	ManageTeam  Action = "manage-team"  // add and remove members, change their roles
	ManageUsers Action = "manage-users" // platform-wide: users and teams; admins only
)

// teamRoles lists what each team role may do.
var teamRoles = map[store.Role][]Action{
	store.RoleTeamAdmin: {Read, Import, Deploy, ManageTeam},
	store.RoleMember:    {Read, Import, Deploy},
	store.RoleViewer:    {Read},
}

// TeamRoles are the roles a user can hold in a team, most privileged first.
var TeamRoles = []store.Role{store.RoleTeamAdmin, store.RoleMember, store.RoleViewer}

// ValidTeamRole checks a team role name and says which exist.
func ValidTeamRole(r string) error {
	if _, ok := teamRoles[store.Role(r)]; !ok {
		return fmt.Errorf("unknown team role %q: use one of team-admin, member, viewer", r)
	}
	return nil
}

// Principal is an authenticated user with their team roles.
type Principal struct {
	User  store.User
	Roles map[int64]store.Role // team ID → role
	// TokenID is the token the request came with.
	TokenID int64
}

// Can reports whether p may do act in the team with ID teamID. Platform admins may do everything; disabled users
// nothing.
func (p *Principal) Can(act Action, teamID int64) bool {
	if p == nil || p.User.Disabled {
		return false
	}
	if p.User.Admin {
		return true
	}
	if act == ManageUsers {
		return false
	}
	role, ok := p.Roles[teamID]
	return ok && slices.Contains(teamRoles[role], act)
}

// Teams lists the teams p may read, or nil for an admin, who may read them all.
func (p *Principal) Teams() []int64 {
	if p.User.Admin {
		return nil
	}
	ids := make([]int64, 0, len(p.Roles))
	for id := range p.Roles {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
