# frozen_string_literal: true

# Stands in for chef-client, which cannot run here: no Chef client package exists in any
# registry these machines reach. With real Ruby it evaluates the shipped cookbooks'
# attribute files and recipes against a node's attributes (as the Chef server serves them),
# records every resource with its properties, and renders every template resource with
# Ruby's own ERB and the variables the recipe passes. What it does not do, and Chef would:
# run providers (nothing is installed, written or restarted), evaluate guards (only_if /
# not_if are recorded), fire notifications (recorded too) or run the handlers a library
# registers (chef_handler_harness.rb runs them). Commands a recipe runs while compiling
# (shell_out) answer from NODE.json's "commands", or fail.
#
#   ruby chef_recorder.rb NODE.json COOKBOOKS_DIR... > RESOURCES.json
#
# NODE.json: {"run_list": ["ntp::client", ...], "automatic": {...}, "environment": {...},
# "roles": [{...}, ...], "normal": {...}, "data_bags": {bag: {item: {...}}},
# "commands": {"lsblk --json": "..."}}; the output lists each resource as
# {"cookbook", "recipe", "type", "name", "properties", "rendered"?}.

require 'erb'
require 'json'
require 'securerandom'
require_relative 'chef_stand_ins' # what libraries use as they load: Chef::Handler, Chef::Config

# Resources of Chef Infra Client 17 the shipped cookbooks may use: a typo or a resource from
# a later Chef is an error here, as it would be on the node.
RESOURCES = %w(
  apt_update chef_client_systemd_timer cookbook_file directory execute file group
  kernel_module link log mount package remote_file ruby_block service sysctl systemd_unit
  template timezone user yum_repository
).freeze

def deep_merge(base, over)
  return over unless base.is_a?(Hash) && over.is_a?(Hash)

  base.merge(over) { |_key, old, new| deep_merge(old, new) }
end

# The `default` of an attribute file: assignments at any depth create the levels above.
class Vivifying < Hash
  def [](key)
    key?(key) ? super : (self[key] = Vivifying.new)
  end
end

# What an attribute file sees: `default`, `override` and the node's automatic attributes.
class AttributeFile
  attr_reader :default, :override

  def initialize(automatic)
    @automatic = automatic
    @default = Vivifying.new
    @override = Vivifying.new
  end

  def node
    @automatic
  end

  def platform_family?(*names)
    names.map(&:to_s).include?(@automatic['platform_family'])
  end

  def platform?(*names)
    names.map(&:to_s).include?(@automatic['platform'])
  end

  def load(path)
    instance_eval(File.read(path), path, 1)
  end
end

# A resource block: each call sets a property; a block given to a property is recorded. The
# node is there too, as in Chef.
class Properties
  LISTED = %w(notifies subscribes only_if not_if).freeze # may be given several times

  attr_reader :values, :node

  def initialize(node)
    @node = node
    @values = {}
  end

  def method_missing(name, *args, &block)
    value = args.length == 1 ? args.first : args
    value = "#<block at #{block.source_location.join(':')}>" if block && args.empty?
    if LISTED.include?(name.to_s)
      (@values[name.to_s] ||= []) << value
    else
      @values[name.to_s] = value
    end
    nil
  end

  def respond_to_missing?(*)
    true
  end
end

# Where cookbook libraries add their helpers, as in Chef (Chef::DSL::Recipe.include).
class Chef
  module DSL
    module Recipe; end
  end
end

# A recipe's world: the node, the platform checks, include_recipe, and every resource.
class Recorder
  include Chef::DSL::Recipe

  attr_reader :resources

  # What shell_out returns: the command's output, as Mixlib::ShellOut does.
  Result = Struct.new(:stdout, :stderr, :exitstatus)

  def initialize(node, cookbooks, data_bags, commands)
    @node = node
    @cookbooks = cookbooks
    @data_bags = data_bags
    @commands = commands
    @resources = []
    @included = {}
    @current = nil
  end

  def data_bag(bag)
    @data_bags.fetch(bag).keys
  end

  def data_bag_item(bag, item)
    @data_bags.fetch(bag).fetch(item)
  end

  def shell_out(*command)
    line = command.join(' ')
    Result.new(@commands.fetch(line) { raise "the recipe runs `#{line}` while compiling: give its output" }, '', 0)
  end
  alias shell_out! shell_out

  def lazy(&block)
    "#<lazy at #{block.source_location.join(':')}>"
  end

  attr_reader :node

  def platform_family?(*names)
    names.map(&:to_s).include?(@node['platform_family'])
  end

  def platform?(*names)
    names.map(&:to_s).include?(@node['platform'])
  end

  def include_recipe(spec)
    cookbook, recipe = spec.split('::', 2)
    recipe ||= 'default'
    return if @included["#{cookbook}::#{recipe}"]

    @included["#{cookbook}::#{recipe}"] = true
    path = File.join(@cookbooks.fetch(cookbook) { raise "no cookbook #{cookbook}" }, 'recipes', "#{recipe}.rb")
    raise "no recipe #{spec} (#{path})" unless File.file?(path)

    outer = @current
    @current = [cookbook, recipe]
    evaluate(path)
    @current = outer
  end

  def evaluate(path)
    instance_eval(File.read(path), path, 1)
  end

  def method_missing(type, *args, &block)
    raise NoMethodError, "#{type} is not a Chef Infra 17 resource or recipe method" unless RESOURCES.include?(type.to_s)

    properties = Properties.new(@node)
    properties.instance_eval(&block) if block
    @resources << { 'cookbook' => @current[0], 'recipe' => @current[1], 'type' => type.to_s,
                    'name' => args.first.to_s, 'properties' => properties.values }
    nil
  end

  def respond_to_missing?(name, *)
    RESOURCES.include?(name.to_s)
  end
end

# A template's world: its variables as instance variables, and the node.
class TemplateContext
  def initialize(node, variables)
    @node = node
    (variables || {}).each { |key, value| instance_variable_set("@#{key}", value) }
  end

  attr_reader :node

  def render(path)
    ERB.new(File.read(path), trim_mode: '-').tap { |erb| erb.filename = path }.result(binding)
  end
end

input = JSON.parse(File.read(ARGV.fetch(0)))
cookbooks = {}
ARGV.drop(1).each do |dir|
  Dir.glob(File.join(dir, '*', 'metadata.rb')).each { |meta| cookbooks[File.basename(File.dirname(meta))] = File.dirname(meta) }
end
automatic = input.fetch('automatic')
wanted = input.fetch('run_list').map { |spec| spec.split('::', 2).first }.uniq
files = AttributeFile.new(automatic)
wanted.each do |cookbook|
  Dir.glob(File.join(cookbooks.fetch(cookbook), 'attributes', '*.rb')).sort.each { |path| files.load(path) }
  Dir.glob(File.join(cookbooks.fetch(cookbook), 'libraries', '*.rb')).sort.each { |path| load(path) }
end
# Chef's precedence, lowest first (automatic wins over everything; override is unused here)
node = [files.default, input.fetch('environment'), *input.fetch('roles'), input.fetch('normal'),
        files.override, automatic].reduce({}) { |merged, level| deep_merge(merged, level) }
recorder = Recorder.new(node, cookbooks, input.fetch('data_bags', {}), input.fetch('commands', {}))
input.fetch('run_list').each { |spec| recorder.include_recipe(spec) }
recorder.resources.each do |resource|
  next unless resource['type'] == 'template'

  cookbook = cookbooks.fetch(resource['properties'].fetch('cookbook', resource['cookbook']))
  source = File.join(cookbook, 'templates', 'default', resource['properties'].fetch('source'))
  resource['rendered'] = TemplateContext.new(node, resource['properties']['variables']).render(source)
end
puts JSON.pretty_generate(recorder.resources)
