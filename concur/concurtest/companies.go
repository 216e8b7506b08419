package concurtest

import (
	"fmt"
	"strings"
)

// DefaultCompanyUsers is how many Identity users CreateCompany gives a
// company unless asked: few, so that 10,000 companies stay small.
const DefaultCompanyUsers = 3

// CompanySpec describes a company for CreateCompany. The zero value is a
// company in the next data centre round-robin with DefaultCompanyUsers users.
type CompanySpec struct {
	// DataCenter is where the company lives; "" -> the server's data
	// centres in turn (the landing zone never: no company lives there).
	DataCenter string
	// Users is how many Identity users it has; 0 -> DefaultCompanyUsers,
	// negative -> none.
	Users int
}

// Company is one company of the simulator (the JSON of GET /_sim/companies).
type Company struct {
	UUID       string `json:"company_uuid"`
	DataCenter string `json:"data_center"`
}

// CreateCompany registers a company with a fresh UUID, as a partner's
// customer that connects the app would be. It is enabled for every client;
// request tokens come from NewRequestToken as for any company. An unknown
// data centre, or the landing zone, is an error naming it.
func (s *Server) CreateCompany(spec CompanySpec) (Company, error) {
	if spec.DataCenter != "" {
		dc := s.dcByName(spec.DataCenter)
		switch {
		case dc == nil:
			return Company{}, fmt.Errorf("data_center %.64q is not a data centre of this simulator (%s)",
				spec.DataCenter, strings.Join(s.DataCenters(), ", "))
		case dc.isLandingZone():
			return Company{}, fmt.Errorf("data_center %q is the landing zone, where no company lives", spec.DataCenter)
		}
	}
	users := spec.Users
	if users == 0 {
		users = DefaultCompanyUsers
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dcName := spec.DataCenter
	if dcName == "" {
		dcName = s.homes[s.nextHome%len(s.homes)].name
		s.nextHome++
	}
	c := &company{uuid: newUUID(), dc: dcName, users: users}
	s.addCompanyLocked(c)
	return Company{UUID: c.uuid, DataCenter: c.dc}, nil
}

// NewCompany registers a company with a fresh UUID at dataCenter ("" -> the
// data centres in turn) and DefaultCompanyUsers users, and returns its UUID.
// It panics where CreateCompany would fail: that is a bug in the test.
func (s *Server) NewCompany(dataCenter string) string {
	c, err := s.CreateCompany(CompanySpec{DataCenter: dataCenter})
	if err != nil {
		panic("concurtest: " + err.Error())
	}
	return c.UUID
}

// Companies lists every company in creation order (AddCompany, seeding
// helpers and CreateCompany alike).
func (s *Server) Companies() []Company {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Company, len(s.companyOrder))
	for i, id := range s.companyOrder {
		out[i] = Company{UUID: id, DataCenter: s.companies[id].dc}
	}
	return out
}
