# frozen_string_literal: true

# The upstream hadoop cookbook only creates the DataNode's directories: the disks under
# them are ours to prepare. Every whole disk that holds nothing (no partition, no
# filesystem, not mounted) is formatted with a label hdfsN and mounted at PREFIX/N by that
# label. A disk with anything on it is never touched, and a disk labelled hdfsN before
# keeps its number, so a later run changes nothing.
prefix = node['hadoop']['hdfs']['data_mount_prefix']
listed = JSON.parse(shell_out!('lsblk', '--json', '--paths', '--output', 'NAME,TYPE,FSTYPE,LABEL,MOUNTPOINT').stdout)
disks = listed['blockdevices'].select { |device| device['type'] == 'disk' }
numbers = disks.filter_map { |disk| disk['label'].to_s[/\Ahdfs(\d+)\z/, 1]&.to_i }
blank = disks.select { |disk| disk['children'].nil? && disk['fstype'].nil? && disk['mountpoint'].nil? }

blank.each do |disk|
  number = (0..).find { |n| !numbers.include?(n) }
  numbers << number
  execute "hadoop: format #{disk['name']} as hdfs#{number}" do
    command ['mkfs.ext4', '-q', '-L', "hdfs#{number}", '-m', '0', disk['name']]
    not_if { shell_out('blkid', '--probe', disk['name']).stdout.include?('TYPE=') }
  end
end

numbers.sort.each do |number|
  mount_point = ::File.join(prefix, number.to_s)

  directory mount_point do
    owner 'root'
    group 'root'
    mode '0755'
    recursive true
  end

  mount mount_point do
    device "hdfs#{number}"
    device_type :label
    fstype 'ext4'
    options %w(defaults noatime nofail)
    action %i(mount enable)
  end
end
