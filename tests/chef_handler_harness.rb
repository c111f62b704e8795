# frozen_string_literal: true

# Runs the handlers a shipped cookbook library registers at the end of one chef-client run,
# with real Ruby, as chef-client would: no Chef client package exists in any registry these
# machines reach, so chef-client cannot. What stands in for it:
#
# - Chef::Handler, Chef::Config and Chef::Log: tests/chef_stand_ins.rb (after Chef Infra
#   Client 17's own; run_report_safely logs what a handler raises, as Chef's does);
# - Chef::RunStatus, below: the run's node, its start and end times and the exception that
#   ended it, with formatted_exception ("Class: message") and elapsed_time as Chef's;
# - the node, below: its run list (items whose to_s is "role[...]", as Chef::RunList's),
#   node[...] reading its normal attributes merged with its automatic ones, frozen as
#   Chef's merged view is, node.normal autovivifying as Chef's VividMash does, and save,
#   which keeps the node object as a PUT to the Chef server would carry it (or raises
#   Errno::ECONNREFUSED, as an unreachable server does, when the scenario says so). Saving
#   a normal attribute that is not JSON data raises TypeError: stricter than Chef, which
#   would send whatever the object's to_json makes of it.
#
# Chef's own node save after a successful converge is not played: the saves listed are the
# handler's. The library is loaded as chef-client loads libraries (Kernel.load), as many
# times as the scenario says (a chef-client that does not fork loads them on every run).
#
#   ruby chef_handler_harness.rb LIBRARY.rb SCENARIO.json > OUTCOME.json
#
# SCENARIO.json: {"loads": 1, "node": {"name", "chef_environment", "run_list": [...],
# "normal": {...}, "automatic": {...}} or null, "start_time": ISO 8601, "elapsed": seconds,
# "exception": {"class": "RuntimeError", "message": "..."} or null, "save_fails": false}.
# OUTCOME.json: {"saved": [node object, ...], "log": [[level, message], ...],
# "handlers": {"report_handlers": n, "exception_handlers": n}, "start_time": ISO 8601 of
# the run status's start time after the handlers ran}.

require 'json'
require 'time'
require_relative 'chef_stand_ins'

# Chef::VividMash's autovivification: reading a missing key makes an empty level.
class Vivifying < Hash
  def self.from(value)
    return value unless value.is_a?(Hash)

    value.each_with_object(new) { |(key, item), result| result[key] = from(item) }
  end

  def [](key)
    key?(key) ? super : (self[key] = Vivifying.new)
  end
end

def deep_merge(base, over)
  return over unless base.is_a?(Hash) && over.is_a?(Hash)

  base.merge(over) { |_key, old, new| deep_merge(old, new) }
end

def deep_freeze(value)
  value.each_value { |item| deep_freeze(item) } if value.is_a?(Hash)
  value.each { |item| deep_freeze(item) } if value.is_a?(Array)
  value.freeze
end

# A run list item: "role[x]" as its to_s, not a String itself.
RunListItem = Struct.new(:type, :name) do
  def to_s
    "#{type}[#{name}]"
  end
end

# The node of the run.
class StandInNode
  attr_reader :name, :normal, :saved

  def initialize(object, save_fails)
    @name = object.fetch('name')
    @environment = object.fetch('chef_environment', '_default')
    @run_list = object.fetch('run_list').map do |item|
      RunListItem.new(*item.match(/\A(role|recipe)\[(.+)\]\z/).captures)
    end
    @normal = Vivifying.from(object.fetch('normal', {}))
    @automatic = object.fetch('automatic', {})
    @save_fails = save_fails
    @saved = []
  end

  def run_list
    @run_list.dup
  end

  def [](key)
    deep_freeze(deep_merge(JSON.parse(JSON.generate(@normal)), @automatic))[key]
  end

  def save
    raise Errno::ECONNREFUSED, 'connect(2) for "chef.example.test" port 443' if @save_fails

    plain!(@normal)
    @saved << JSON.parse(JSON.generate({
                                         'name' => @name, 'chef_environment' => @environment,
                                         'json_class' => 'Chef::Node', 'chef_type' => 'node',
                                         'run_list' => @run_list.map(&:to_s), 'normal' => @normal,
                                         'automatic' => @automatic, 'default' => {}, 'override' => {}
                                       }))
    self
  end

  private

  # What the node keeps must be JSON data: an object that is not (a run list item kept as
  # itself) would reach the server as whatever its to_json says, if anything.
  def plain!(value)
    case value
    when Hash then value.each { |key, item| plain!(key) && plain!(item) }
    when Array then value.each { |item| plain!(item) }
    when String, Integer, Float, true, false, nil then true
    else raise TypeError, "not JSON data in the node: #{value.inspect}"
    end
  end
end

class Chef
  # What a run hands its handlers.
  class RunStatus
    attr_reader :node, :start_time, :end_time, :exception

    def initialize(node, start_time, end_time, exception)
      @node = node
      @start_time = start_time
      @end_time = end_time
      @exception = exception
    end

    def elapsed_time
      @end_time - @start_time
    end

    def success?
      @exception.nil?
    end

    def failed?
      !success?
    end

    def backtrace
      @exception&.backtrace
    end

    def formatted_exception
      @exception && "#{@exception.class.name}: #{@exception.message}"
    end
  end
end

library, scenario_path = ARGV
scenario = JSON.parse(File.read(scenario_path))
scenario.fetch('loads', 1).times { Kernel.load(library) }
node = scenario['node'] && StandInNode.new(scenario['node'], scenario.fetch('save_fails', false))
started = Time.iso8601(scenario.fetch('start_time'))
failure = scenario['exception'] && Object.const_get(scenario['exception'].fetch('class'))
                                         .new(scenario['exception'].fetch('message'))
run_status = Chef::RunStatus.new(node, started, started + scenario.fetch('elapsed'), failure)
# Chef::Handler.run_report_handlers / run_exception_handlers, with resolve_handler_instance
Array(Chef::Config[run_status.success? ? :report_handlers : :exception_handlers]).each do |handler|
  (handler.is_a?(Class) ? handler.new : handler).run_report_safely(run_status)
end
puts JSON.pretty_generate({
                            'saved' => node ? node.saved : [], 'log' => Chef::Log.lines,
                            'handlers' => %i(report_handlers exception_handlers).to_h do |list|
                              [list, Array(Chef::Config[list]).length]
                            end,
                            'start_time' => run_status.start_time.iso8601
                          })
