# frozen_string_literal: true

# Builds the barclamp's RAID layout on the first controller: the OS volume on the first
# two unconfigured drives, then the data layout on the rest. A controller that already
# holds virtual drives is left alone while keep_existing is set. Where no vendor tool is
# installed the node says so, as a warning in its run and in its attributes
# (crowbar.raid) where the admin node reads it: a layout is never silently not built.
raid = node['raid']
storcli = raid['storcli'].to_a.find { |path| ::File.executable?(path) }

status = storcli.nil? ? 'skipped: no vendor tool (storcli) on this node' : 'applied'
ruby_block 'raid: record the outcome' do
  block { node.normal['crowbar']['raid'] = { 'status' => status } }
end

if storcli.nil?
  log 'raid: skipped' do
    message "raid: #{status}: the layout (OS #{raid['os_raid_level']}, data #{raid['data_layout']}) was not built"
    level :warn
  end
  return
end

ruby_block 'raid: build the layout' do
  block do
    shown = JSON.parse(shell_out!(storcli, '/c0', 'show', 'all', 'J').stdout)
    found = shown.dig('Controllers', 0, 'Response Data') || {}
    if raid['keep_existing'] && found['VD LIST'].to_a.any?
      Chef::Log.warn('raid: the controller holds virtual drives and keep_existing is set')
      next
    end
    free = found['PD LIST'].to_a.select { |drive| drive['State'] == 'UGood' }.map { |drive| drive['EID:Slt'] }
    volumes = []
    unless raid['os_raid_level'] == 'jbod'
      raise "raid: the OS volume needs two unconfigured drives, found #{free.length}" if free.length < 2

      volumes << [raid['os_raid_level'], free.shift(2)]
    end
    if raid['data_layout'] == 'jbod'
      free.each { |drive| shell_out!(storcli, "/c0/e#{drive.sub(':', '/s')}", 'set', 'jbod') }
    elsif free.any?
      volumes << [raid['data_layout'], free]
    end
    volumes.each do |level, drives|
      shell_out!(storcli, '/c0', 'add', 'vd', "type=#{level}", "drives=#{drives.join(',')}",
                 "strip=#{raid['stripe_size_kb']}")
    end
  end
  not_if { raid['keep_existing'] && shell_out(storcli, '/c0/vall', 'show').stdout.include?('RAID') }
end
