# frozen_string_literal: true

# The Cloudera Manager server, pointed once at its database by Cloudera's own script (which
# reads the password from its input when none is on its command line, where ps shows it).
package 'cloudera-manager-server'

execute 'cloudera_manager: point the server at its database' do
  command %w(/opt/cloudera/cm/schema/scm_prepare_database.sh postgresql scm scm)
  input(lazy { ::File.read('/etc/cloudera-scm-server/db.password') })
  sensitive true
  not_if 'grep -q "^com.cloudera.cmf.db.setupType=EXTERNAL" /etc/cloudera-scm-server/db.properties'
end

service 'cloudera-scm-server' do
  action %i(enable start)
end
