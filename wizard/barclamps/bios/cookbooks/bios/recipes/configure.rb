# frozen_string_literal: true

# Applies the barclamp's BIOS profile with the vendor's tool. Where none is installed the
# node says so, as a warning in its run and in its attributes (crowbar.bios) where the
# admin node reads it: a profile is never silently not applied. Changed settings are
# staged as a BIOS job and applied by one power cycle, as the BIOS needs.
bios = node['bios']
racadm = bios['racadm'].to_a.find { |path| ::File.executable?(path) }
wanted = {
  'BIOS.BiosBootSettings.BootMode' => bios['boot_mode'] == 'uefi' ? 'Uefi' : 'Bios',
  'BIOS.SysProfileSettings.SysProfile' => {
    'performance' => 'PerfOptimized', 'balanced' => 'PerfPerWattOptimizedDapc',
    'power-saving' => 'PerfPerWattOptimizedOs'
  }.fetch(bios['power_profile']),
  'BIOS.ProcSettings.ProcVirtualization' => bios['virtualization'] ? 'Enabled' : 'Disabled'
}

status = if racadm.nil? then 'skipped: no vendor tool (Dell racadm) on this node'
         elsif bios['dry_run'] then 'dry run: settings compared, none changed'
         else
           'applied'
         end

ruby_block 'bios: record the outcome' do
  block { node.normal['crowbar']['bios'] = { 'status' => status, 'profile' => wanted } }
end

if racadm.nil?
  log 'bios: skipped' do
    message "bios: #{status}: the profile #{wanted} was not applied"
    level :warn
  end
  return
end

execute 'bios: stage the changed settings' do
  command [racadm, 'jobqueue', 'create', 'BIOS.Setup.1-1', '-r', 'pwrcycle', '-s', 'TIME_NOW']
  action :nothing
end

wanted.each do |key, value|
  differs = proc { !shell_out(racadm, 'get', key).stdout.include?("#{key.split('.').last}=#{value}") }
  if bios['dry_run']
    log "bios: #{key} would be set to #{value}" do
      level :warn
      only_if(&differs)
    end
  else
    execute "bios: set #{key} #{value}" do
      command [racadm, 'set', key, value]
      only_if(&differs)
      notifies :run, 'execute[bios: stage the changed settings]', :delayed
    end
  end
end
