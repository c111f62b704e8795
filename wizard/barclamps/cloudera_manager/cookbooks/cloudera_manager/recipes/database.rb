# frozen_string_literal: true

# PostgreSQL on the server node, with Cloudera Manager's database and account. The
# password is the barclamp's db_password when the operator set one (it travels in the
# barclamp's data bag item); unset, one is generated here once and kept in a 0600 file.
cm = node['cloudera_manager']
postgresql = cm['postgresql']
item_id = data_bag('crowbar').find { |id| id.start_with?('bc-cloudera_manager-') }
password_file = '/etc/cloudera-scm-server/db.password'
password = data_bag_item('crowbar', item_id)['db_password'] ||
           (::File.exist?(password_file) ? ::File.read(password_file).strip : SecureRandom.hex(24))

package postgresql['package']

execute 'cloudera_manager: initialise PostgreSQL' do
  command postgresql['initdb']
  creates '/var/lib/pgsql/data/PG_VERSION'
  only_if { postgresql['initdb'] }
end

service postgresql['service'] do
  action %i(enable start)
end

directory '/etc/cloudera-scm-server' do
  owner 'root'
  group 'root'
  mode '0755'
end

file password_file do
  content "#{password}\n"
  owner 'root'
  group 'root'
  mode '0600'
  sensitive true
end

quoted = password.gsub("'", "''")
execute 'cloudera_manager: create the scm account and database' do
  command %w(psql --quiet --set ON_ERROR_STOP=1)
  user 'postgres'
  input "CREATE ROLE scm LOGIN PASSWORD '#{quoted}';\nCREATE DATABASE scm OWNER scm ENCODING 'UTF8';\n"
  sensitive true
  not_if "psql --tuples-only --command \"SELECT 1 FROM pg_roles WHERE rolname = 'scm'\" | grep -q 1", user: 'postgres'
end
